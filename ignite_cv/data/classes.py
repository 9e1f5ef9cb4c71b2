"""The order of a data set's classes: the positive class of two last, or a checkpoint's own order.

A two-class model's single logit is the evidence for class index 1 (:mod:`ignite_cv.task`), so the
positive class is moved to index 1 before anything is built (``--positive-class``): the loss, the
ROC, the report and the checkpoint card then all agree without a special case, and the card's class
order tells any later reader which class is positive. Reordering relabels every split (labels only; the
images stay where they are). A checkpoint whose class order differs from a freshly loaded data set
(evaluation) gets the data relabelled into its own order by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.utils.errors import UserError


def positive_last(class_names: Sequence[str], positive: str) -> list[str]:
    """The class order with ``positive`` at index 1 (two classes); ``""`` keeps the order (the second
    class in sorted order is positive by default)."""
    names = [str(n) for n in class_names]
    if not positive:
        return names
    if len(names) != 2:
        raise UserError(
            f"--positive-class {positive!r} is for two classes; the data has {len(names)}",
            "drop --positive-class (several classes have no single positive one)",
        )
    if positive not in names:
        raise UserError(
            f"--positive-class {positive!r} is not a class of the data ({', '.join(names)})",
            f"pass one of: {', '.join(names)}",
        )
    return [n for n in names if n != positive] + [positive]


def reorder_classes(bundle: DataBundle, order: Sequence[str]) -> DataBundle:
    """``bundle`` relabelled so that ``bundle.class_names == list(order)`` (a permutation of its names)."""
    names = list(bundle.class_names)
    order = [str(n) for n in order]
    if sorted(order) != sorted(names):
        raise ValueError(f"{order} is not a reordering of the classes {names}")
    if order == names:
        return bundle
    mapping = torch.tensor([order.index(name) for name in names], dtype=torch.int64)

    def relabel(split: Split) -> Split:
        return dataclasses.replace(split, labels=mapping.to(split.labels.device)[split.labels])

    return dataclasses.replace(
        bundle,
        train=relabel(bundle.train),
        val=relabel(bundle.val),
        test=relabel(bundle.test),
        class_names=order,
    )


def class_counts(split: Split, num_classes: int) -> list[int]:
    """Samples per class in ``split``."""
    return torch.bincount(split.labels.cpu(), minlength=num_classes).tolist()
