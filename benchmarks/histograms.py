"""Cost of ``--log-histograms`` (:class:`ignite_cv.handlers.histograms.WeightGradientHistograms`).

The same Ignite Engine trains the same registry model on the same synthetic uint8 28×28 grey images
(seeded, 10 classes), batch 128, AdamW, with and without the handler; the handler logs every epoch
(``every=1``, the worst case: a run with ``--log-histograms N`` pays this in one epoch of N) into a real
``SummaryWriter`` in a temporary folder. Runs alternate (without, with, without, ...) after an untimed
warm-up of each; each timed span starts after ``gc.collect()`` and covers the epochs only. The ratio
with / without is taken per pair; its median is printed, with the per-epoch seconds. On a machine shared
with other jobs pass ``--threads 1`` (see ``benchmarks/overhead.py``).

    python benchmarks/histograms.py                    # TinyVGG (32), 3 epochs of 8192 images, 5 pairs
    python benchmarks/histograms.py --model resnet18 --size 32 --channels 3 --images 2048
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ignite.engine import Engine  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from ignite_cv.handlers.histograms import WeightGradientHistograms  # noqa: E402
from ignite_cv.models import build_model  # noqa: E402


def run_once(args: argparse.Namespace, with_handler: bool, log_dir: str) -> float:
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args.model, args.channels, (args.size, args.size), 10).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(
        0, 256, (args.images, args.channels, args.size, args.size), dtype=torch.uint8, generator=g
    )
    y = torch.randint(0, 10, (args.images,), generator=g)
    x, y = x.to(device), y.to(device)
    batches = [
        (x[i : i + args.batch_size], y[i : i + args.batch_size]) for i in range(0, len(x), args.batch_size)
    ]

    def step(engine, batch):
        images, labels = batch
        loss = F.cross_entropy(model(images.float().div_(255.0)), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    trainer = Engine(step)
    writer = SummaryWriter(log_dir)
    if with_handler:
        WeightGradientHistograms(model, writer, every=1).attach(trainer)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.run(batches, max_epochs=args.epochs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    writer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tinyvgg")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run_once(args, False, f"{tmp}/warm-a")
        run_once(args, True, f"{tmp}/warm-b")
        ratios, plain, logged = [], [], []
        for i in range(args.repeats):
            without = run_once(args, False, f"{tmp}/a{i}")
            with_it = run_once(args, True, f"{tmp}/b{i}")
            plain.append(without / args.epochs)
            logged.append(with_it / args.epochs)
            ratios.append(with_it / without)
    print(
        f"{args.model} {args.channels}×{args.size}×{args.size}, {args.images} images, "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.repeats} pairs, "
        f"threads {torch.get_num_threads()}, {args.device}"
    )
    print(f"epoch without histograms: median {statistics.median(plain):.3f} s")
    print(f"epoch with histograms (every epoch): median {statistics.median(logged):.3f} s")
    pairs = ", ".join(f"{r:.3f}" for r in ratios)
    print(f"ratio with / without: median {statistics.median(ratios):.3f} (pairs: {pairs})")


if __name__ == "__main__":
    main()
