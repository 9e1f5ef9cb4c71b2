"""Statistics of a split: its fingerprint, exact per-channel mean/std, per-class counts.

The per-channel statistics of uint8 images are computed exactly: each batch adds to a 256-bin
histogram per channel (int64 counts), and the mean and variance come from the integer sums
Σv·count and Σv²·count in Python's arbitrary-precision integers, divided once in float64. The
result does not depend on the batch size or order and matches a NumPy float64 reference to the
last bits. Float batches fall back to float64 sums merged per batch (Chan et al.).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from ignite_cv.data.splits import Split

#: Bytes hashed per step when fingerprinting an in-memory split (bounds the temporary CPU copy).
_HASH_CHUNK = 64 * 2**20


def fingerprint_split(split: Split, decode: Mapping[str, Any] | None = None) -> str:
    """A sha256 hex digest that identifies a split's content, for caching statistics beside it.

    In memory: the images' shape and dtype, their bytes, then the labels' bytes (all in one sha256).
    Files: the (reference, label) pairs sorted by reference; the files' contents are not read, so a
    file replaced under the same name keeps the fingerprint. ``decode`` (e.g. the bundle's image size,
    channels and centre-crop flag) is folded in, since file splits are decoded at a size chosen later.
    """
    digest = hashlib.sha256()
    if split.images is not None:
        images = split.images
        digest.update(f"images {tuple(images.shape)} {images.dtype}\n".encode())
        flat = images.reshape(-1)
        for start in range(0, flat.numel(), _HASH_CHUNK):
            chunk = flat[start : start + _HASH_CHUNK].cpu().contiguous()
            digest.update(chunk.numpy().tobytes())
        labels = split.labels.cpu().contiguous()
        digest.update(f"labels {tuple(labels.shape)}\n".encode())
        digest.update(labels.numpy().tobytes())
    else:
        pairs = sorted(zip(split.files, split.labels.tolist()))
        digest.update(f"files {len(pairs)}\n".encode())
        for ref, label in pairs:
            digest.update(f"{ref}\t{label}\n".encode())
    if decode:
        digest.update(json.dumps(dict(decode), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def channel_stats(batches: Iterable[torch.Tensor]) -> tuple[list[float], list[float], int]:
    """Per-channel mean and (population, ddof = 0) standard deviation over all images of ``batches``.

    ``batches`` yields ``(N, C, H, W)`` tensors on any device: uint8 (statistics in [0, 1] units, i.e.
    of ``x / 255``, as the batch pipeline sees them; exact, see the module docstring) or floating point
    (in the input's units; float64 accumulation). Returns (mean, std, number of images).
    """
    histogram: torch.Tensor | None = None  # uint8 path: (C, 256) int64
    float_state: tuple[torch.Tensor, torch.Tensor, int] | None = None  # float path: mean, M2, count
    images = 0
    channels: int | None = None
    for batch in batches:
        if batch.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) batches, got {tuple(batch.shape)}")
        if channels is None:
            channels = batch.shape[1]
        elif batch.shape[1] != channels:
            raise ValueError(f"batches have {channels} and {batch.shape[1]} channels")
        if batch.shape[0] == 0:
            continue
        images += batch.shape[0]
        per_channel = batch.transpose(0, 1).reshape(channels, -1)
        if batch.dtype == torch.uint8:
            counts = torch.stack([torch.bincount(row, minlength=256) for row in per_channel])
            histogram = counts if histogram is None else histogram + counts
        else:
            float_state = _merge(float_state, per_channel.to(torch.float64))
    if channels is None or images == 0:
        raise ValueError("no images to compute statistics from")
    if histogram is not None and float_state is not None:
        raise ValueError("batches mix uint8 and floating-point images")
    if histogram is not None:
        return (*_histogram_stats(histogram.cpu()), images)
    mean, m2, count = float_state
    return mean.tolist(), (m2 / count).sqrt().tolist(), images


def _histogram_stats(histogram: torch.Tensor) -> tuple[list[float], list[float]]:
    """Exact mean and std of values v/255 from per-channel counts of v = 0..255."""
    means, stds = [], []
    for row in histogram.tolist():
        n = sum(row)
        total = sum(v * c for v, c in enumerate(row))
        squares = sum(v * v * c for v, c in enumerate(row))
        # var·n² = n·Σv² − (Σv)², an exact integer; one float division at the end.
        means.append(total / n / 255.0)
        stds.append(math.sqrt((n * squares - total * total) / (n * n)) / 255.0)
    return means, stds


def _merge(
    state: tuple[torch.Tensor, torch.Tensor, int] | None, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Chan et al.'s parallel update of (mean, sum of squared deviations, count) with a (C, n) block."""
    n = values.shape[1]
    mean = values.mean(dim=1)
    m2 = (values - mean.unsqueeze(1)).square().sum(dim=1)
    if state is None:
        return mean, m2, n
    old_mean, old_m2, count = state
    total = count + n
    delta = mean - old_mean
    return old_mean + delta * (n / total), old_m2 + m2 + delta.square() * (count * n / total), total


def class_counts(split: Split, num_classes: int) -> list[int]:
    """How many samples of each class the split holds."""
    return torch.bincount(split.labels.cpu(), minlength=num_classes).tolist()


def split_batches(split: Split, batch_size: int = 4096) -> Iterator[torch.Tensor]:
    """The images of an in-memory split in batches of ``batch_size`` (views, no copy)."""
    if split.images is None:
        raise ValueError("a file split must be decoded to be iterated (ignite_cv.data.loaders.build_loader)")
    for start in range(0, len(split), batch_size):
        yield split.images[start : start + batch_size]
