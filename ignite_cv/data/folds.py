"""Stratified k-fold assignment over a run's training data: train and val pooled, the test split never.

A cross-validation study (:mod:`ignite_cv.training.folds`) pools the two splits a data set trains on
(:func:`pool_split`: train then val, as the source made them) and assigns every pooled sample to one
of K folds with scikit-learn's ``StratifiedKFold(n_splits=K, shuffle=True, random_state=fold_seed)``
(:func:`assign_folds`): each class is spread over the folds so that its count per fold differs by at
most one. Fold ``i`` trains on the other folds and validates on fold ``i`` (:func:`fold_bundle`); its
test split is the data set's own, identical for every fold. The assignment depends only on the pooled
labels, K and the fold seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.utils.errors import UserError


def pool_split(data: DataBundle) -> Split:
    """Train and val of ``data`` as one split (train's samples first), where they live."""
    train, val = data.train, data.val
    if train.in_memory != val.in_memory:
        raise ValueError("train and val must both be in memory or both be files to be pooled")
    labels = torch.cat([train.labels, val.labels.to(train.labels.device)])
    if train.in_memory:
        return Split(labels=labels, images=torch.cat([train.images, val.images.to(train.images.device)]))
    return Split(labels=labels, files=[*train.files, *val.files])


def check_fold_count(folds: int) -> None:
    """A one-line UserError unless ``folds >= 2``."""
    if folds == 1:
        raise UserError(
            "--folds 1 is a single run, not cross-validation", "pass --folds 5 (any K >= 2), or drop --folds"
        )
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}", "pass e.g. --folds 5")


def check_folds(folds: int, labels: torch.Tensor, class_names: list[str]) -> None:
    """A one-line UserError unless ``2 <= folds <=`` the smallest class's pooled count."""
    check_fold_count(folds)
    counts = np.bincount(labels.cpu().numpy(), minlength=len(class_names))
    present = [(int(n), name) for n, name in zip(counts, class_names) if n > 0]
    smallest, name = min(present)
    if folds > smallest:
        raise UserError(
            f"--folds {folds} is more than the {smallest} samples of class {name!r} in train+val, so "
            "some fold would have none of it",
            f"pass --folds {smallest} or fewer",
        )


def assign_folds(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """The fold (0..K-1) of every sample: int64 ``(N,)`` from ``StratifiedKFold`` with ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    y = labels.cpu().numpy()
    assignment = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
        assignment[held] = fold
    return torch.from_numpy(assignment)


def fold_indices(assignment: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` pooled-sample indices of ``fold`` (int64, ascending, disjoint, covering all)."""
    held = assignment == fold
    indices = torch.arange(len(assignment))
    return indices[~held], indices[held]


def fold_bundle(data: DataBundle, pool: Split, assignment: torch.Tensor, fold: int) -> DataBundle:
    """``data`` with train and val replaced by fold ``fold``'s share of ``pool``; test unchanged."""
    train_idx, val_idx = fold_indices(assignment, fold)
    return dataclasses.replace(data, train=pool.subset(train_idx), val=pool.subset(val_idx))
