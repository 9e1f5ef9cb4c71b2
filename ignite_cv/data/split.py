"""Seeded, stratified hold-out splits.

Every source uses the same function to carve a validation (or test) split out of a training split,
so a split depends only on the labels, the fraction and the seed: the same run configuration
always trains and evaluates on the same images, on any machine.
"""

from __future__ import annotations

import torch


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into a kept part and a held-out part with the same class proportions.

    Per class with ``n`` samples, ``round(n * fraction)`` samples are held out, but at least one
    when ``n >= 2`` and never all of them (a class with one sample stays in the kept part). The
    choice within each class is a permutation drawn from a ``torch.Generator`` seeded with
    ``seed``, classes in ascending label order, so the result is a pure function of
    ``(labels, fraction, seed)``.

    Args:
        labels: int64 class indices, shape ``(N,)``, any device (read on the CPU).
        fraction: share of each class to hold out, ``0 <= fraction < 1``; 0 holds out nothing.
        seed: seed of the permutation.

    Returns:
        ``(keep_idx, held_idx)``: int64 CPU tensors of indices into ``labels``, each in ascending
        order, disjoint, together covering ``0..N-1``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    labels = labels.detach().to("cpu", torch.int64)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    held_mask = torch.zeros(len(labels), dtype=torch.bool)
    if fraction > 0.0 and len(labels) > 0:
        generator = torch.Generator().manual_seed(seed)
        for cls in torch.unique(labels).tolist():
            members = torch.nonzero(labels == cls).flatten()
            n = len(members)
            if n < 2:
                continue
            n_held = min(max(round(n * fraction), 1), n - 1)
            chosen = members[torch.randperm(n, generator=generator)[:n_held]]
            held_mask[chosen] = True
    indices = torch.arange(len(labels))
    return indices[~held_mask], indices[held_mask]
