"""Where a run's uint8 splits live, and the loader of a split for this process.

Training, evaluation, pruning and the tools all build their loaders here, from the same config fields
(``batch_size``, ``seed``, ``workers``, ``center_crop``), so the order and sharding rules of
:mod:`ignite_cv.data.loaders` hold everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import ignite.distributed as idist
import torch

from ignite_cv.data.loaders import balanced_weights, build_loader, fits_on_device, materialize
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.utils.distributed import per_process_batch

#: Decoded data up to this size is kept in host memory as one uint8 tensor (no DataLoader per epoch).
HOST_MEMORY_BUDGET = 4 * 2**30


def place_data(data: DataBundle, config: Any, device: torch.device) -> DataBundle:
    """Where the uint8 splits live: decoded once into host memory when they fit (no per-epoch JPEG
    decoding), and on the model's device when it is a GPU with room (``--data-on-device``)."""
    splits = [data.train, data.val, data.test]
    mode = config.data_on_device
    shape = (data.channels, *data.image_size)
    decode = mode == "yes" or fits_on_device(splits, "cpu", HOST_MEMORY_BUDGET, sample_shape=shape)
    if mode != "no" and decode:
        splits = [
            s
            if s.in_memory
            else materialize(s, data.image_size, data.channels, config.center_crop, config.workers)
            for s in splits
        ]
    movable = device.type != "cpu" and mode != "no" and all(s.in_memory for s in splits)
    if movable and (mode == "yes" or fits_on_device(splits, device)):
        splits = [
            dataclasses.replace(s, images=s.images.to(device), labels=s.labels.to(device)) for s in splits
        ]
    return dataclasses.replace(data, train=splits[0], val=splits[1], test=splits[2])


def make_loader(
    config: Any,
    data: DataBundle,
    split: Split,
    *,
    train: bool,
    device: torch.device,
    batch_size: int | None = None,
    shard: bool = True,
):
    """The loader of one split for this process: its shard (unless ``shard=False``), uint8 batches.

    ``batch_size`` is this process's (default: the global ``config.batch_size`` divided among the
    processes). In-memory splits are iterated where their tensors live (the device, with
    ``--data-on-device``); file splits are decoded in DataLoader workers and pinned for non-blocking
    copies to a GPU. A training loader draws class-balanced samples with ``--sampler balanced``.
    """
    rank, world = (idist.get_rank(), idist.get_world_size()) if shard else (0, 1)
    balanced = train and getattr(config, "sampler", "none") == "balanced"
    return build_loader(
        split,
        batch_size=batch_size or per_process_batch(config.batch_size, world),
        train=train,
        device=split.images.device if split.in_memory else torch.device("cpu"),
        seed=config.seed,
        rank=rank,
        world_size=world,
        workers=config.workers,
        pin_memory=device.type == "cuda",
        image_size=data.image_size,
        channels=data.channels,
        center_crop=config.center_crop,
        weights=balanced_weights(split.labels) if balanced else None,
    )


def training_batches(config: Any, data: DataBundle) -> Callable[[], Iterator[torch.Tensor]]:
    """A factory of uint8 batches over the whole training split (every rank sees all of it), for
    normalization statistics; never validation or test data."""

    def batches() -> Iterator[torch.Tensor]:
        loader = make_loader(
            config,
            data,
            data.train,
            train=False,
            device=torch.device("cpu"),
            batch_size=max(config.batch_size, 256),
            shard=False,
        )
        for images, _ in loader:
            yield images

    return batches
