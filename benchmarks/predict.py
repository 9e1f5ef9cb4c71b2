"""Prediction throughput on a folder of JPEGs: ignite_cv's prediction path against a plain torchvision loop.

Both do the same work on the same files with the same model, input size, batch size, workers and
device, and both end with a CSV of probabilities:

* ``ignite_cv``: :meth:`ignite_cv.inference.predictor.Predictor.predict` on the folder (listing,
  decoding and resizing in DataLoader workers, uint8 batches pinned on CUDA, normalization on the
  device) and :func:`ignite_cv.inference.table.write_predictions_csv` — what ``tools/predict.py`` runs
  after loading the model;
* ``torchvision``: ``ImageFolder`` (PIL decode, RGB) with ``Resize((H, W))`` and ``PILToTensor``,
  a ``DataLoader``, then to the device, ``/255``, ``Normalize``, the model, softmax, and ``csv``
  (written atomically too).

Without ``--images`` the script writes ``--count`` JPEGs (smooth random colour fields, ``--jpeg-size``,
quality 90) into a temporary ImageFolder tree. Without ``--checkpoint`` it saves an untrained
``--model`` (default resnet18) at ``--image-size`` with ImageNet normalization. Model loading is
outside the timings. Runs alternate ``--repeats`` times; the medians and their ratio are printed.

    python benchmarks/predict.py                                  # 512 JPEGs, resnet18 at 64 px
    python benchmarks/predict.py --checkpoint best.safetensors --images val_folder/ --workers 2
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ignite_cv.inference.predictor import Predictor  # noqa: E402
from ignite_cv.inference.table import write_predictions_csv  # noqa: E402
from ignite_cv.pipeline.normalize import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from ignite_cv.utils.atomic import atomic_path  # noqa: E402


def make_jpegs(root: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """``count`` JPEGs in two class folders: bilinearly upsampled random 8×6 colour grids."""
    rng = np.random.default_rng(seed)
    width, height = size
    for i in range(count):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        small.resize((width, height), Image.Resampling.BILINEAR).save(folder / f"{i:05d}.jpg", quality=90)


def make_checkpoint(path: Path, model_name: str, image_size: int) -> None:
    from ignite_cv.models import build_model
    from ignite_cv.weights import ModelCard, save_model

    torch.manual_seed(0)
    model = build_model(model_name, 3, (image_size, image_size), 1)
    card = ModelCard(
        arch=model_name,
        arch_args={},
        class_names=["a", "b"],
        in_channels=3,
        image_size=[image_size, image_size],
        num_outputs=1,
        normalization={"kind": "imagenet", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    )
    save_model(path, model, card)


def run_ignite_cv(predictor: Predictor, folder: Path, out: Path, batch: int, workers: int) -> int:
    result = predictor.predict(folder, batch_size=batch, workers=workers)
    write_predictions_csv(out, result)
    return len(result)


def run_torchvision(predictor: Predictor, folder: Path, out: Path, batch: int, workers: int) -> int:
    from torchvision import datasets, transforms

    card, device = predictor.card, predictor.device
    if card.in_channels != 3:
        raise SystemExit("the torchvision loop here reads RGB; pass a 3-channel checkpoint")
    height, width = card.image_size
    transform = transforms.Compose([transforms.Resize((height, width)), transforms.PILToTensor()])
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda"
    )
    mean = torch.tensor(card.normalization["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(card.normalization["std"], device=device).view(1, -1, 1, 1)
    model, binary = predictor.model, card.num_outputs == 1
    chunks = []
    with torch.inference_mode():
        for images, _ in loader:
            x = (images.to(device, non_blocking=True).float() / 255 - mean) / std
            logits = model(x).float()
            if binary:
                logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
            chunks.append(logits.softmax(dim=1))
    probabilities = torch.cat(chunks).cpu().tolist()
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:  # as write_predictions_csv does
        writer = csv.writer(handle)
        writer.writerow(["path", *card.class_names])
        for (path, _), row in zip(dataset.samples, probabilities):
            writer.writerow([path, *row])
    return len(probabilities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="", help="an RGB checkpoint (default: an untrained --model)")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", default="", help="an ImageFolder tree of JPEGs (default: generated)")
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--jpeg-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="predict-bench-") as tmp:
        tmp = Path(tmp)
        folder = Path(args.images) if args.images else tmp / "images"
        if not args.images:
            make_jpegs(folder, args.count, tuple(args.jpeg_size))
        checkpoint = Path(args.checkpoint) if args.checkpoint else tmp / "model.safetensors"
        if not args.checkpoint:
            make_checkpoint(checkpoint, args.model, args.image_size)
        predictor = Predictor.from_checkpoint(checkpoint, args.device)
        h, w = predictor.card.image_size
        print(
            f"{predictor.card.arch} at {h}×{w} on {predictor.device}, batch {args.batch_size}, "
            f"{args.workers} workers, {torch.get_num_threads()} threads; images: {folder}"
        )
        runs = {"ignite_cv": run_ignite_cv, "torchvision": run_torchvision}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        run_ignite_cv(predictor, folder, tmp / "warmup.csv", args.batch_size, 0)  # first-call costs
        for repeat in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                n = run(predictor, folder, tmp / f"{name}.csv", args.batch_size, args.workers)
                seconds = time.perf_counter() - start
                rates[name].append(n / seconds)
                print(
                    f"  run {repeat + 1} {name:<12} {n} images in {seconds:.2f}s = {n / seconds:.1f} images/s"
                )
        ours, plain = statistics.median(rates["ignite_cv"]), statistics.median(rates["torchvision"])
        print(
            f"median images/s: ignite_cv {ours:.1f}, torchvision loop {plain:.1f}; ratio {ours / plain:.3f}"
        )


if __name__ == "__main__":
    main()
