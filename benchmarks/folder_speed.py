"""ignite_cv against a plain torchvision ``ImageFolder`` + ``DataLoader`` loop on the same image folder.

The same ResNet-18 from scratch (torchvision's, the plain loop builds it with ``num_classes``), at the
same size (a plain resize to a square, no augmentation, ImageNet normalization), batch size, number of
DataLoader workers, Adam at a constant learning rate, for 1 and 5 epochs. Each run is a separate
process and its wall time is what a user waits for, start-up and finish included:

* ``plain``: ``ImageFolder(train/)`` with ``Resize → ToTensor → Normalize`` and ``DataLoader(shuffle=True,
  num_workers=W)``; per epoch a training pass and an accuracy pass over ``val/``; ``test/`` once at the
  end when the folder has one. Every JPEG is decoded again in every epoch.
* ``ignite_cv first``: ``recipes/resnet_finetune.py --mode scratch --weights none`` with an empty cache:
  one decode pass over all cores, then training on the decoded uint8 tensors; checkpoints, metrics,
  TensorBoard and the test report as always.
* ``ignite_cv cached``: the same command again: the decoded images come from the cache.

Runs alternate (plain 1, first 1, cached 1, plain 5, cached 5) for ``--repeats`` rounds; each ratio
is plain / ignite_cv wall time within a round (above 1: ignite_cv is faster), and the median over
rounds is printed. The fixed per-run cost on digits (``recipes/tinyvgg.py --epochs 1`` minus its
epoch) comes last (``benchmarks/startup.py`` breaks it down).

By default a folder of ``--images`` JPEGs of mixed sizes (``--min-px``..``--max-px``, smooth shapes
whose colours depend on the class) is generated once into ``--folder`` (default: a temporary folder)
as ``train/``, ``val/``, ``test/`` (70/15/15 %). ``--folder`` may also be an existing tree or a zip
(extracted into a temporary folder, as ``ImageFolder`` cannot read zips).

    python benchmarks/folder_speed.py                                   # 3,000 generated JPEGs
    python benchmarks/folder_speed.py --folder ../shared/data/hymenoptera_data.zip
    python benchmarks/folder_speed.py --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import startup  # noqa: E402  (benchmarks/startup.py: wall runs of the digits recipe)

from ignite_cv.utils.atomic import write_json_atomic  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MARKER = ".folder_speed.json"


# ----------------------------------------------------------------------------------------------
# the folder


def generate_folder(root: Path, images: int, classes: int, min_px: int, max_px: int, seed: int = 0) -> None:
    """``root/{train,val,test}/class_k/*.jpg``: mixed sizes, class-tinted ellipses and boxes on a gradient."""
    import numpy as np
    from PIL import Image, ImageDraw

    settings = {
        "images": images, "classes": classes, "min_px": min_px, "max_px": max_px, "seed": seed, "layout": 2,
    }  # fmt: skip
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()) == settings:
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    palette = rng.integers(40, 216, size=(classes, 3))
    for i in range(images):
        label = i % classes
        slot = (i // classes) % 20  # every class in every split (70/15/15 %)
        part = "train" if slot < 14 else "val" if slot < 17 else "test"
        width, height = (int(v) for v in rng.integers(min_px, max_px + 1, size=2))
        ramp = np.linspace(0, 1, width)[None, :, None] * rng.integers(0, 120, size=3)
        base = (rng.integers(0, 100, size=3) + ramp + np.zeros((height, 1, 1))).clip(0, 255)
        img = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = rng.integers(0, width), rng.integers(0, height)
            x1, y1 = x0 + rng.integers(10, width // 2 + 11), y0 + rng.integers(10, height // 2 + 11)
            colour = tuple(int(v) for v in (palette[label] + rng.integers(-30, 31, size=3)).clip(0, 255))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
        path = root / part / f"class_{label}" / f"img_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, "JPEG", quality=90)
    write_json_atomic(marker, settings)


def prepare_folder(args: argparse.Namespace, tmp: Path) -> Path:
    if args.folder and Path(args.folder).suffix.lower() == ".zip":
        out = tmp / "extracted"
        with zipfile.ZipFile(args.folder) as zf:
            zf.extractall(out)
        entries = [p for p in out.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        return entries[0] if len(entries) == 1 and entries[0].is_dir() else out
    root = Path(args.folder) if args.folder else tmp / "generated"
    if not args.folder or not root.exists() or (root / MARKER).exists():
        print(f"generating {args.images} JPEGs into {root} ...", flush=True)
        generate_folder(root, args.images, args.classes, args.min_px, args.max_px)
    return root


def describe(root: Path) -> str:
    counts = {}
    for part in ("train", "val", "test"):
        if (root / part).is_dir():
            counts[part] = sum(
                1 for p in (root / part).rglob("*") if p.is_file() and not p.name.startswith(".")
            )
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or str(root)


# ----------------------------------------------------------------------------------------------
# the plain loop (runs in a child process)


def plain_loop(root: Path, epochs: int, size: int, batch: int, workers: int, lr: float) -> None:
    """The loop a user writes with torchvision alone."""
    import torch
    import torch.nn.functional as F
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    torch.manual_seed(0)
    tf = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    train = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf)
    val = torchvision.datasets.ImageFolder(str(root / "val"), transform=tf)
    test = (
        torchvision.datasets.ImageFolder(str(root / "test"), transform=tf)
        if (root / "test").is_dir()
        else None
    )
    train_loader = DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers)
    model = torchvision.models.resnet18(num_classes=len(train.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def accuracy(dataset) -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in DataLoader(dataset, batch_size=batch, num_workers=workers):
                correct += int((model(x).argmax(1) == y).sum())
        return correct / len(dataset)

    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        print(
            f"epoch {epoch + 1}: val accuracy {accuracy(val):.4f} ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    if test is not None:
        print(f"test accuracy {accuracy(test):.4f}", flush=True)


# ----------------------------------------------------------------------------------------------
# timed runs


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU_SECONDS: list[float] = []  # CPU seconds (user + system, all processes) of each timed run, in order


def timed(cmd: list[str], threads: int) -> float:
    """Wall seconds of ``cmd`` (its CPU seconds go to :data:`CPU_SECONDS`); output shown only on failure."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, env=_env(threads), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    CPU_SECONDS.append(_children_cpu() - cpu)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return seconds


def ignite_cmd(root: Path, epochs: int, args: argparse.Namespace, out: Path, cache: Path) -> list[str]:
    return [
        sys.executable, "recipes/resnet_finetune.py", "--dataset", "folder", "--data-root", str(root),
        "--mode", "scratch", "--weights", "none", "--image-size", str(args.size), "--epochs", str(epochs),
        "--batch-size", str(args.batch), "--workers", str(args.workers), "--optimizer", "adam",
        "--lr", str(args.lr), "--weight-decay", "0", "--scheduler", "none", "--augment", "none",
        "--normalize", "imagenet", "--patience", "0", "--dropout", "0", "--output-dir", str(out),
        "--cache-dir", str(cache),
    ]  # fmt: skip


def plain_cmd(root: Path, epochs: int, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, __file__, "--plain-child", str(root), "--epochs-child", str(epochs),
        "--size", str(args.size), "--batch", str(args.batch), "--workers", str(args.workers),
        "--lr", str(args.lr),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="", help="image tree or zip (default: generate JPEGs)")
    parser.add_argument("--images", type=int, default=3000, help="JPEGs to generate")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--min-px", type=int, default=160)
    parser.add_argument("--max-px", type=int, default=480)
    parser.add_argument("--size", type=int, default=64, help="training image size in pixels")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of both")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--long-epochs", type=int, default=5, help="epochs of the long runs")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS (0: torch's default)")
    parser.add_argument(
        "--digits-runs", type=int, default=3, help="runs of the digits fixed-cost measurement"
    )
    parser.add_argument("--plain-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--epochs-child", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_child:
        plain_loop(Path(args.plain_child), args.epochs_child, args.size, args.batch, args.workers, args.lr)
        return

    with tempfile.TemporaryDirectory(prefix="folder-speed-") as tmp_name:
        tmp = Path(tmp_name)
        root = prepare_folder(args, tmp)
        long = args.long_epochs
        print(
            f"folder {root} ({describe(root)}); resnet18 from scratch at {args.size} px, batch {args.batch}, "
            f"{args.workers} DataLoader workers, threads {args.threads or 'default'}"
        )
        names = ["plain 1", "first 1", "cached 1", f"plain {long}", f"cached {long}"]
        times: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.repeats):
            cache = tmp / f"cache{r}"
            out = tmp / f"runs{r}"
            shutil.rmtree(cache, ignore_errors=True)
            times["plain 1"].append(timed(plain_cmd(root, 1, args), args.threads))
            times["first 1"].append(timed(ignite_cmd(root, 1, args, out, cache), args.threads))
            times["cached 1"].append(timed(ignite_cmd(root, 1, args, out, cache), args.threads))
            times[f"plain {long}"].append(timed(plain_cmd(root, long, args), args.threads))
            times[f"cached {long}"].append(timed(ignite_cmd(root, long, args, out, cache), args.threads))
            for name, seconds in zip(names, CPU_SECONDS[-len(names) :]):
                cpu[name].append(seconds)
            runs = ", ".join(f"{n} {times[n][-1]:.1f} s (CPU {cpu[n][-1]:.1f} s)" for n in names)
            print(f"  round {r + 1}: {runs}", flush=True)

        def ratio(table: dict[str, list[float]], plain: str, ours: str) -> float:
            return statistics.median(p / o for p, o in zip(table[plain], table[ours]))

        print(
            f"\nwall seconds (median of {args.repeats}) and ratio plain / ignite_cv (> 1: ignite_cv faster)"
        )
        rows = [
            ("plain loop, 1 epoch", "plain 1", None),
            ("ignite_cv first run (decode + cache), 1 epoch", "first 1", "plain 1"),
            ("ignite_cv cached run, 1 epoch", "cached 1", "plain 1"),
            (f"plain loop, {long} epochs", f"plain {long}", None),
            (f"ignite_cv cached run, {long} epochs", f"cached {long}", f"plain {long}"),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'':<{width}}  {'wall':>7}  {'ratio':>5}  {'CPU':>7}  {'ratio':>5}")
        for label, name, against in rows:
            text = f"{label:<{width}}  {statistics.median(times[name]):7.1f}  "
            text += f"{ratio(times, against, name):5.2f}" if against else " " * 5
            text += f"  {statistics.median(cpu[name]):7.1f}  "
            text += f"{ratio(cpu, against, name):5.2f}" if against else ""
            print(text.rstrip())

        if args.digits_runs:
            print(f"\nfixed per-run cost on digits (recipes/tinyvgg.py --epochs 1, {args.digits_runs} runs):")
            walls = startup.wall_runs("recipes/tinyvgg.py", [], args.digits_runs, args.threads, tmp)
            fixed = statistics.median(w - e for w, e, _ in walls)
            epoch = statistics.median(e for _, e, _ in walls)
            wall = statistics.median(w for w, _, _ in walls)
            print(f"wall {wall:.2f} s, epoch {epoch:.2f} s, fixed cost {fixed:.2f} s (medians)")


if __name__ == "__main__":
    main()
