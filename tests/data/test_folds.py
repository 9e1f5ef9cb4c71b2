"""Fold assignment: the pool is partitioned, each class spread within one per fold, test never in a fold."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.data.folds import assign_folds, check_folds, fold_bundle, fold_indices, pool_split
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.utils.errors import UserError


def _bundle(train_labels, val_labels, test_labels) -> DataBundle:
    """Images whose single pixel is a unique sample id: train 0.., val 100.., test 200.."""

    def split(labels, start):
        n = len(labels)
        ids = torch.arange(start, start + n, dtype=torch.uint8).view(n, 1, 1, 1)
        return Split(labels=torch.tensor(labels, dtype=torch.int64), images=ids)

    return DataBundle(
        name="ids",
        train=split(train_labels, 0),
        val=split(val_labels, 100),
        test=split(test_labels, 200),
        class_names=["a", "b", "c"],
        channels=1,
        image_size=(1, 1),
    )


TRAIN = [0] * 20 + [1] * 13 + [2] * 7
VAL = [0] * 3 + [1] * 2 + [2] * 1
TEST = [0, 1, 2] * 4


def test_pool_is_train_then_val():
    pool = pool_split(_bundle(TRAIN, VAL, TEST))
    assert pool.labels.tolist() == TRAIN + VAL
    assert pool.images.flatten().tolist() == list(range(40)) + list(range(100, 106))


def test_file_splits_pool_their_file_lists():
    bundle = _bundle(TRAIN, VAL, TEST)
    files = DataBundle(
        "f",
        Split(torch.tensor([0, 1]), files=["a.png", "b.png"]),
        Split(torch.tensor([1]), files=["c.png"]),
        bundle.test,
        ["a", "b"],
        1,
        (1, 1),
    )
    pool = pool_split(files)
    assert pool.files == ["a.png", "b.png", "c.png"] and pool.labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize("folds", [2, 3, 5, 8])
def test_folds_partition_the_pool_and_are_stratified(folds):
    labels = torch.tensor(TRAIN + VAL)
    assignment = assign_folds(labels, folds, seed=4)
    assert sorted(set(assignment.tolist())) == list(range(folds))
    held = [fold_indices(assignment, f)[1] for f in range(folds)]
    assert sorted(torch.cat(held).tolist()) == list(range(len(labels)))  # each sample in exactly one fold
    for f in range(folds):
        train_idx, val_idx = fold_indices(assignment, f)
        assert set(train_idx.tolist()).isdisjoint(val_idx.tolist())
        assert len(train_idx) + len(val_idx) == len(labels)
    counts = torch.stack([torch.bincount(labels[h], minlength=3) for h in held])  # (folds, classes)
    assert (counts.max(dim=0).values - counts.min(dim=0).values).max().item() <= 1


def test_assignment_depends_on_the_fold_seed_only():
    labels = torch.tensor(TRAIN + VAL)
    assert torch.equal(assign_folds(labels, 5, 1), assign_folds(labels, 5, 1))
    assert not torch.equal(assign_folds(labels, 5, 1), assign_folds(labels, 5, 2))


def test_a_fold_trains_and_validates_on_the_pool_and_tests_on_the_test_split():
    bundle = _bundle(TRAIN, VAL, TEST)
    pool = pool_split(bundle)
    assignment = assign_folds(pool.labels, 4, 0)
    seen_val = []
    for f in range(4):
        fold = fold_bundle(bundle, pool, assignment, f)
        train_ids = set(fold.train.images.flatten().tolist())
        val_ids = set(fold.val.images.flatten().tolist())
        assert train_ids.isdisjoint(val_ids)
        assert (train_ids | val_ids) == set(pool.images.flatten().tolist())
        assert all(i < 200 for i in train_ids | val_ids)  # no test sample in any fold
        assert torch.equal(fold.test.images, bundle.test.images)
        seen_val += sorted(val_ids)
    assert sorted(seen_val) == sorted(pool.images.flatten().tolist())


def test_bad_fold_counts_are_one_line_errors():
    labels = torch.tensor(TRAIN + VAL)
    with pytest.raises(UserError, match=r"--folds 1 is a single run.*pass --folds 5"):
        check_folds(1, labels, ["a", "b", "c"])
    with pytest.raises(
        UserError, match=r"--folds 9 is more than the 8 samples of class 'c'.*--folds 8 or fewer"
    ):
        check_folds(9, labels, ["a", "b", "c"])
    check_folds(8, labels, ["a", "b", "c"])  # the smallest class has 8: one per fold
