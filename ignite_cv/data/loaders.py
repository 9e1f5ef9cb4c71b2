"""Loaders: batches of uint8 images and int64 labels, in a seeded order, sharded across processes.

Two kinds, with the same order and sharding rules (:func:`epoch_indices`):

* :class:`TensorLoader` slices an in-memory split that already sits on the target device, with
  ``index_select``: no DataLoader, no workers, no host-to-device copy per batch.
* :class:`FileLoader` wraps a DataLoader whose workers decode image files
  (:class:`FileImageDataset`) to uint8; its batches come back on the CPU (pinned when CUDA).

Training order (``shuffle=True``) is a permutation drawn from a CPU generator seeded by
``(seed, epoch)``: a pure function of both, whatever the device, so a resumed run sees the order
it would have seen.
Every rank draws the same permutation and takes every ``world_size``-th element of it from its
rank on (equal lengths: the last ``N mod world_size`` samples are left out that epoch, so all ranks
run the same number of steps); batch i of all ranks together is then batch i of one process with
the global batch size. Evaluation order (``shuffle=False``) is ``rank, rank + world_size, ...``:
unpadded, so every sample is seen exactly once over all ranks (ranks may differ by one batch).

Class-balanced training (``--sampler balanced``, :func:`balanced_weights`): instead of a permutation,
``N`` draws with replacement from the same ``(seed, epoch)`` generator, sample ``i`` with probability
proportional to ``weights[i]`` (1 / its class's count, so every class is equally likely); the
strided shards are then taken from that one stream, so N processes again see what one would, and a
resumed epoch (a pure function of seed and epoch) continues where it stopped. Why not torch's
``WeightedRandomSampler``: it is not distribution-aware (pytorch/pytorch#77154), and a sampler per
rank would draw different streams.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ignite_cv.data.folder import UnreadableImage, decode_image, display_name
from ignite_cv.data.splits import Split
from ignite_cv.utils.errors import UserError

#: ``--data-on-device auto`` budget where no better estimate exists (CPU, MPS): 4 GiB.
DEFAULT_HOST_BUDGET = 4 * 2**30


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed from ``(seed, epoch)``, the same in every process and Python run."""
    digest = hashlib.sha256(f"ignite_cv:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_indices(
    n: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """This rank's sample indices (int64, on ``device``) for ``epoch``; see the module docstring.

    ``weights`` (float ``(n,)``, on the CPU): draw ``n`` samples with replacement, proportionally to
    them, instead of a permutation (training only)."""
    device = torch.device(device)
    if not shuffle:
        return torch.arange(rank, n, world_size, device=device)
    # Drawn on the CPU (about 1 ms per 100k samples) and copied once: the order is then the same on
    # every device type and every rank, which a CUDA generator does not promise.
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    if weights is not None:
        permutation = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        permutation = torch.randperm(n, generator=generator)
    # Strided shards: batch i of every rank together is batch i of a single process with the global
    # batch size, so N processes see the data in the same order as one.
    per_rank = n // world_size
    return permutation[: per_rank * world_size][rank::world_size].to(device)


def balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-sample draw weights (float64, CPU) that make every class present in ``labels`` equally likely:
    ``1 / count(class of i)``."""
    labels = labels.to("cpu", torch.int64)
    counts = torch.bincount(labels).to(torch.float64)
    return (1.0 / counts)[labels]


def _shard_size(n: int, shuffle: bool, rank: int, world_size: int) -> int:
    return n // world_size if shuffle else len(range(rank, n, world_size))


def _num_batches(count: int, batch_size: int, drop_last: bool) -> int:
    """Batches for ``count`` samples; ``drop_last`` drops only a final batch of a single sample
    (BatchNorm cannot normalize one sample), keeping other partial batches."""
    batches = math.ceil(count / batch_size)
    if drop_last and batch_size >= 2 and count % batch_size == 1:
        batches -= 1
    return batches


def _checked_weights(weights: torch.Tensor | None, n: int) -> torch.Tensor | None:
    if weights is None:
        return None
    weights = weights.to("cpu", torch.float64)
    if weights.shape != (n,) or not bool((weights >= 0).all()) or not float(weights.sum()) > 0:
        raise ValueError(f"weights must be {n} non-negative numbers, not all 0")
    return weights


def _check_shard(batch_size: int, rank: int, world_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")


class TensorLoader:
    """Batches ``(images[idx], labels[idx])`` of an in-memory split, on the tensors' device.

    Args:
        images: uint8 ``(N, C, H, W)`` on any device.
        labels: int64 ``(N,)`` on the same device.
        batch_size: samples per batch in this process.
        shuffle: training order (seeded permutation, equal shards) or evaluation order (unpadded
            strided shards); see the module docstring.
        seed: run seed; the order of epoch ``e`` depends only on ``(seed, e)``.
        rank, world_size: this process's place among the data-parallel processes.
        drop_last: drop a final batch of one sample (for training; BatchNorm).
        weights: class-balanced draws instead of a permutation (see :func:`epoch_indices`).

    ``set_epoch(e)`` chooses the epoch the next iteration draws; each iteration then advances the
    epoch by one, so iterating without ``set_epoch`` still reshuffles every epoch. ``len()`` is the
    number of batches per epoch in this process.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        weights: torch.Tensor | None = None,
    ) -> None:
        _check_shard(batch_size, rank, world_size)
        if len(images) != len(labels) or images.device != labels.device:
            raise ValueError("images and labels must have the same length and device")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.weights = _checked_weights(weights, len(labels))
        self.epoch = 0

    @property
    def device(self) -> torch.device:
        return self.images.device

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's sample order in ``epoch`` (before batching)."""
        return epoch_indices(
            len(self.labels),
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=epoch,
            rank=self.rank,
            world_size=self.world_size,
            device=self.device,
            weights=self.weights,
        )

    def __len__(self) -> int:
        count = _shard_size(len(self.labels), self.shuffle, self.rank, self.world_size)
        return _num_batches(count, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices(self.epoch)  # drawn now, not at the first next()
        self.epoch += 1
        return self._batches(order, len(self))

    def _batches(self, order: torch.Tensor, num_batches: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b in range(num_batches):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)


class ShardBatchSampler(Sampler[list[int]]):
    """The batch sampler of :class:`FileLoader`: :class:`TensorLoader`'s order and batching, as
    lists of indices (on the CPU), for the epoch last given to ``set_epoch``.

    Unlike the loaders it does not advance the epoch by itself: a DataLoader may call ``iter()`` on
    its sampler more than once per pass (it does when it starts persistent workers).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        weights: torch.Tensor | None = None,
    ) -> None:
        _check_shard(batch_size, rank, world_size)
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.weights = _checked_weights(weights, n)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        count = _shard_size(self.n, self.shuffle, self.rank, self.world_size)
        return _num_batches(count, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_indices(
            self.n,
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=self.epoch,
            rank=self.rank,
            world_size=self.world_size,
            weights=self.weights,
        ).tolist()
        num_batches = len(self)
        return iter([order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(num_batches)])


class FileImageDataset(Dataset):
    """Decodes one image file (path or ``zip://`` reference) per item to uint8 ``(C, H, W)``.

    Zip archives are opened lazily, once per worker process (and thread). An image that fails to
    decode here (it passed the validation scan, so it changed since) raises :class:`UserError`.
    """

    def __init__(
        self,
        files: Sequence[str],
        labels: torch.Tensor | Sequence[int],
        image_size: int | Sequence[int],
        channels: int,
        center_crop: bool = False,
    ) -> None:
        self.files = list(files)
        self.labels = labels.tolist() if isinstance(labels, torch.Tensor) else [int(x) for x in labels]
        if len(self.files) != len(self.labels):
            raise ValueError(f"{len(self.files)} files but {len(self.labels)} labels")
        self.size = _pair(image_size)
        self.channels = channels
        self.center_crop = center_crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        ref = self.files[index]
        try:
            image = decode_image(ref, self.channels, self.size, self.center_crop)
        except UnreadableImage as err:
            raise ImageReadError(
                f"cannot read image {display_name(ref)} ({err}) although it passed the scan before training",
                "restore or remove the file, then resume the run (--resume RUN_DIR)",
            ) from None
        return image, self.labels[index]


class ImageReadError(UserError):
    """An image that stopped decoding after the scan. Raised in a DataLoader worker, it reaches the
    main process rebuilt by PyTorch from one text, ``"Caught ImageReadError in DataLoader worker
    process 0. Original Traceback ..."``, whose last line is this message: that line is kept, so the
    user reads one short line and no worker traceback."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        if fix is None and "Original Traceback" in problem:
            last = problem.strip().splitlines()[-1]
            problem = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(problem, fix)


class FileLoader:
    """A DataLoader over :class:`FileImageDataset` with a :class:`ShardBatchSampler`.

    Iterating gives ``(images uint8 (B, C, H, W), labels int64 (B,))`` on the CPU; ``set_epoch``
    and ``len()`` behave as in :class:`TensorLoader`. Workers are persistent across epochs.
    """

    def __init__(
        self, dataset: FileImageDataset, batch_sampler: ShardBatchSampler, workers: int, pin_memory: bool
    ):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self.dataloader = DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            persistent_workers=workers > 0,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.batch_sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.dataloader)


def materialize(
    split: Split,
    image_size: int | Sequence[int],
    channels: int,
    center_crop: bool = False,
    workers: int = 0,
) -> Split:
    """Decode a file split into one in-memory uint8 ``(N, C, H, W)`` tensor on the CPU.

    Decoding happens in ``workers`` DataLoader processes (0: this process), in uint8 only.
    A split already in memory is returned as is.
    """
    if split.in_memory:
        return split
    height, width = _pair(image_size)
    out = torch.empty((len(split), channels, height, width), dtype=torch.uint8)
    dataset = FileImageDataset(split.files, split.labels, (height, width), channels, center_crop)
    loader = DataLoader(dataset, batch_size=64, shuffle=False, num_workers=workers)
    position = 0
    for images, _ in loader:
        out[position : position + len(images)] = images
        position += len(images)
    return Split(labels=split.labels.clone(), images=out)


def build_loader(
    split: Split,
    *,
    batch_size: int,
    train: bool,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
    pin_memory: bool = True,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    center_crop: bool = False,
    weights: torch.Tensor | None = None,
) -> TensorLoader | FileLoader:
    """A loader for one split, for one process.

    Args:
        split: in memory (→ :class:`TensorLoader`, tensors moved once to ``device``) or files
            (→ :class:`FileLoader`, batches on the CPU; ``image_size``, ``channels`` and
            ``center_crop`` — the bundle's — are then required).
        batch_size: samples per batch in THIS process (the caller divides the global batch).
        train: shuffled, equal-length shards and a dropped final single-sample batch; else the
            evaluation order, each sample exactly once over all ranks.
        device: where an in-memory split's batches live (the model's device for data on device,
            else the CPU); for file splits it only decides whether memory is pinned (CUDA).
        seed, rank, world_size: order and sharding (see the module docstring).
        workers: DataLoader worker processes for file splits.
        pin_memory: pin file batches when ``device`` is CUDA.
        weights: training only: per-sample draw weights (class-balanced sampling,
            :func:`balanced_weights`) instead of a permutation.

    Raises:
        UserError: in training, when the global batch (``batch_size * world_size``) is larger
            than the split.
    """
    device = torch.device(device)
    if train and batch_size * world_size > len(split):
        raise UserError(
            f"--batch-size {batch_size * world_size} is larger than the training split "
            f"({len(split)} samples)",
            "lower it",
        )
    if weights is not None and not train:
        raise ValueError("weighted draws are for training; evaluation sees every sample once")
    options = dict(
        shuffle=train, seed=seed, rank=rank, world_size=world_size, drop_last=train, weights=weights
    )
    if split.in_memory:
        images = split.images.to(device)
        labels = split.labels.to(device)
        return TensorLoader(images, labels, batch_size, **options)
    if image_size is None or channels is None:
        raise ValueError("a file split needs image_size and channels (the bundle's) to be decoded")
    dataset = FileImageDataset(split.files, split.labels, image_size, channels, center_crop)
    sampler = ShardBatchSampler(len(split), batch_size, **options)
    pin = pin_memory and device.type == "cuda" and torch.cuda.is_available()
    return FileLoader(dataset, sampler, workers, pin)


def decoded_bytes(split: Split, sample_shape: Sequence[int] | None = None) -> int:
    """Bytes a split takes decoded in memory: uint8 images plus int64 labels. File splits need
    ``sample_shape`` = (C, H, W)."""
    if split.in_memory:
        return split.images.numel() + 8 * len(split)
    if sample_shape is None:
        raise ValueError("a file split needs sample_shape=(C, H, W)")
    return len(split) * (math.prod(sample_shape) + 8)


def memory_budget(device: torch.device | str) -> int:
    """The ``--data-on-device auto`` budget: a quarter of free CUDA memory, else 4 GiB."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return DEFAULT_HOST_BUDGET


def fits_on_device(
    splits: Sequence[Split],
    device: torch.device | str,
    budget_bytes: int | None = None,
    *,
    sample_shape: Sequence[int] | None = None,
) -> bool:
    """Whether the decoded splits fit ``budget_bytes`` (default :func:`memory_budget`), for
    ``--data-on-device auto``. ``sample_shape`` = (C, H, W) is needed for file splits."""
    budget = memory_budget(device) if budget_bytes is None else budget_bytes
    return sum(decoded_bytes(s, sample_shape) for s in splits) <= budget
