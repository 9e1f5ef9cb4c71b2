"""Throughput of the training-time input pipeline, with the 'standard' augmentation, in images/s.

Three ways to turn in-memory uint8 RGB images into augmented, normalized float batches:

* ``torchvision``: torchvision.transforms.v2 per sample (RandomResizedCrop, RandomHorizontalFlip,
  ColorJitter with p=0.8, ToDtype, Normalize) in DataLoader worker processes, batches then moved to
  the device (pinned memory when it is a GPU);
* ``ignite_cv``: ignite_cv's loader (``build_loader``: the split kept on the device, batches by
  ``index_select``) and its BatchPipeline with ``--augment standard`` on the device;
* ``kornia``: the same loader with kornia.augmentation's AugmentationSequential (RandomResizedCrop,
  RandomHorizontalFlip, ColorJiggle p=0.8) and the same normalizer, for reference.

All three use the same magnitudes (crop area 0.35–1, ratio 3/4–4/3, brightness/contrast/saturation
0.4, hue 0.05). Both sizes start from uint8 images already in memory, so file decoding is not
measured. The RNG audit counts the random-number ops one forward dispatches: ignite_cv draws them on
the batch's device from its own generator, Kornia on the CPU from the global generator.

    python benchmarks/pipeline.py            # CPU (and the GPU when there is one), 32 and 224 px
    python benchmarks/pipeline.py --quick    # shorter measurements, fewer images (~40 s on 2 cores)
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ignite_cv.config import TrainConfig  # noqa: E402
from ignite_cv.data.loaders import build_loader  # noqa: E402
from ignite_cv.data.splits import Split  # noqa: E402
from ignite_cv.pipeline.augment import audit_random_ops, build_augmentation  # noqa: E402
from ignite_cv.pipeline.batch_pipeline import BatchPipeline  # noqa: E402
from ignite_cv.pipeline.normalize import build_normalizer  # noqa: E402

MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
CONFIG = TrainConfig(augment="standard")  # the magnitudes every method uses


class UInt8Dataset(torch.utils.data.Dataset):
    """Per-sample access to in-memory uint8 images, transformed in the worker that reads them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


def torchvision_transform(size: int) -> Callable:
    from torchvision.transforms import v2

    c = CONFIG
    return v2.Compose(
        [
            v2.RandomResizedCrop(
                size,
                scale=(c.aug_crop_scale_min, c.aug_crop_scale_max),
                ratio=(c.aug_crop_ratio_min, c.aug_crop_ratio_max),
                antialias=True,
            ),
            v2.RandomHorizontalFlip(c.aug_flip_p),
            v2.RandomApply(
                [v2.ColorJitter(c.aug_jiggle, c.aug_jiggle, c.aug_jiggle, c.aug_hue)], p=c.aug_jiggle_p
            ),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def kornia_augmentation(size: int) -> torch.nn.Module:
    import kornia.augmentation as K

    c = CONFIG
    return K.AugmentationSequential(
        K.RandomResizedCrop(
            (size, size),
            scale=(c.aug_crop_scale_min, c.aug_crop_scale_max),
            ratio=(c.aug_crop_ratio_min, c.aug_crop_ratio_max),
        ),
        K.RandomHorizontalFlip(p=c.aug_flip_p),
        K.ColorJiggle(c.aug_jiggle, c.aug_jiggle, c.aug_jiggle, c.aug_hue, p=c.aug_jiggle_p),
    )


def forever(loader) -> Iterator:
    return itertools.chain.from_iterable(loader for _ in itertools.count())


class Cell:
    """One method at one size: an endless batch iterator and the step that turns a batch into output."""

    def __init__(self, batches: Iterator, step: Callable, device: torch.device, warmup: int = 2) -> None:
        self.batches, self.step, self.device = batches, step, device
        for _ in range(warmup):
            step(next(batches))
        self.sync()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def rate(self, seconds: float) -> float:
        """Images per second over about ``seconds``."""
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            count += len(self.step(next(self.batches)))
        self.sync()
        return count / (time.perf_counter() - start)


def run_size(size: int, device: torch.device, args) -> dict[str, list[float]]:
    """Rates per round of every method at ``size``. Methods take turns within each round, so a
    neighbour's load on a shared machine hits them alike; the table shows the median round."""
    n = args.images_32 if size <= 64 else args.images_224
    batch_size = args.batch_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    cells: dict[str, Cell] = {}

    dataset = UInt8Dataset(images, labels, torchvision_transform(size))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    cells["torchvision"] = Cell(forever(loader), lambda b: b[0].to(device, non_blocking=True), device)

    split = Split(labels=labels, images=images)
    ours = build_loader(split, batch_size=batch_size, train=True, device=device, seed=0)
    normalizer = build_normalizer({"kind": "meanstd", "mean": MEAN, "std": STD})
    pipeline = BatchPipeline(normalizer, build_augmentation(CONFIG, 3, (size, size))).to(device)
    cells["ignite_cv"] = Cell(forever(ours), lambda b: pipeline(b[0], augment=True), device)
    if not args.no_kornia:
        kornia_pipeline = BatchPipeline(normalizer, kornia_augmentation(size)).to(device)
        cells["kornia"] = Cell(forever(ours), lambda b: kornia_pipeline(b[0], augment=True), device)

    rates: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(args.rounds):
        for name, cell in cells.items():
            rates[name].append(cell.rate(args.seconds / args.rounds))
    return rates


def rng_audit(device: torch.device) -> list[str]:
    x = torch.rand(16, 3, 32, 32, device=device)
    lines = []
    for name, module in [
        ("ignite_cv", build_augmentation(CONFIG, 3, (32, 32))),
        ("kornia", kornia_augmentation(32)),
    ]:
        state = torch.get_rng_state()
        _, calls = audit_random_ops(module, x)
        unchanged = torch.equal(state, torch.get_rng_state())
        global_cpu = sum(1 for c in calls if c.device == "cpu" and not c.explicit_generator)
        on_device = sum(1 for c in calls if c.device.split(":")[0] == device.type)
        lines.append(
            f"  {name:<10} {len(calls):>3} random ops per batch, {on_device} on {device.type}, "
            f"{global_cpu} from the global CPU generator; global CPU RNG state unchanged: {unchanged}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s per measurement and fewer images")
    parser.add_argument("--device", default="auto", help="auto (cpu, plus cuda when present), cpu or cuda")
    parser.add_argument("--sizes", default="32,224", help="image sizes in pixels, comma-separated")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the torchvision method")
    parser.add_argument(
        "--seconds", type=float, default=None, help="measurement time per cell (default 4, quick 1.5)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads of this process, which runs ignite_cv and kornia (0: torch's default); on a "
        "shared machine 1 avoids OpenMP stalls when a neighbour holds a core",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell; the table shows the median")
    parser.add_argument("--no-kornia", action="store_true", help="skip the Kornia reference")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.seconds = args.seconds or (1.5 if args.quick else 6.0)
    args.images_32 = 4096 if args.quick else 16384
    args.images_224 = 512 if args.quick else 1024
    if args.device == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(args.device)]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch_size}, "
        f"{args.workers} DataLoader workers, 'standard' augmentation, {args.seconds:g} s per cell"
    )
    methods = ["torchvision", "ignite_cv"] + ([] if args.no_kornia else ["kornia"])
    header = f"{'device':<8} {'size':>5} " + " ".join(f"{m + ' img/s':>17}" for m in methods)
    rows, spreads = [], []
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for size in sizes:
            rates = run_size(size, device, args)
            rows.append(
                f"{device.type:<8} {size:>5} "
                + " ".join(f"{statistics.median(rates[m]):>17,.0f}" for m in methods)
            )
            spreads.append(
                f"{device.type:<8} {size:>5} "
                + " ".join(f"{min(rates[m]):>8,.0f}-{max(rates[m]):<8,.0f}" for m in methods)
            )
            print(rows[-1], f"({name})", flush=True)
    print(f"\nmedian of {args.rounds} rounds:")
    print(header)
    print("\n".join(rows))
    print("range over the rounds:")
    print("\n".join(spreads))
    print("\nRNG audit (one batch of 16 RGB 32x32 images):")
    for device in devices:
        print("\n".join(rng_audit(device)))


if __name__ == "__main__":
    main()
