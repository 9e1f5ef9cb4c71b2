"""stratified_split: per-class proportions, at least one held sample per class, determinism."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.data.split import stratified_split


def _labels(counts: list[int]) -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]


def test_per_class_proportions_and_minimum_one():
    labels = _labels([100, 50, 10, 2, 1])
    keep, held = stratified_split(labels, 0.2, seed=0)
    held_counts = torch.bincount(labels[held], minlength=5).tolist()
    assert held_counts == [20, 10, 2, 1, 0]  # round(n*0.2), >= 1 when n >= 2, a single sample stays
    assert torch.bincount(labels[keep], minlength=5).tolist() == [80, 40, 8, 1, 1]


def test_disjoint_cover_sorted():
    labels = _labels([30, 17, 9])
    keep, held = stratified_split(labels, 0.3, seed=5)
    assert keep.dtype == held.dtype == torch.int64
    assert sorted(torch.cat([keep, held]).tolist()) == list(range(len(labels)))
    assert torch.equal(keep, keep.sort().values) and torch.equal(held, held.sort().values)


def test_deterministic_and_seed_dependent():
    labels = _labels([40, 40, 40])
    a = stratified_split(labels, 0.25, seed=3)
    b = stratified_split(labels.clone(), 0.25, seed=3)
    c = stratified_split(labels, 0.25, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_never_empties_a_class():
    labels = _labels([3, 2])
    keep, _ = stratified_split(labels, 0.9, seed=0)
    assert torch.bincount(labels[keep], minlength=2).tolist() == [1, 1]


def test_zero_fraction_and_invalid_fraction():
    labels = _labels([5, 5])
    keep, held = stratified_split(labels, 0.0, seed=0)
    assert len(keep) == 10 and len(held) == 0
    with pytest.raises(ValueError):
        stratified_split(labels, 1.0, seed=0)
