"""Time overhead of ignite_cv's training loop and default handlers over a hand-written PyTorch loop.

The same model (from ignite_cv's registry, same arguments) on the same in-memory data (synthetic uint8
28×28 grey images of 10 classes, seeded), the same batch size, loss, optimizer and number of epochs:

* ``plain``: a hand-written loop. Per epoch: a seeded permutation, batches by ``index_select``,
  uint8 → float/255 → per-channel mean/std normalization, forward, cross-entropy, AdamW step; then an
  evaluation pass over the validation split that computes the accuracy (one host sync per epoch).
  It runs twice per repeat, with the two optimizer kernels (``--plain-optimizer``): ``default``, what
  ``torch.optim.AdamW(params)`` picks (a per-tensor loop on the CPU), as a hand-written loop has it;
  and ``fused``, the kernel ignite_cv picks. Against ``default`` the ratio is what a user switching
  from a plain script sees; against ``fused`` it is the cost of ignite_cv's loop and handlers alone.
* ``ignite_cv``: :func:`ignite_cv.training.fit` on an ``.npz`` of the same arrays with ``--normalize
  meanstd --scheduler none --augment none``, everything else at its defaults (``--train-metrics`` and
  ``--live-curves`` as given here): Ignite trainer and evaluator, training metrics, the live
  ``report/curves.png``, the full evaluation metrics (loss, confusion-matrix P/R/F1, ROC-AUC),
  best-weights tracking, best and last checkpoints (safetensors) and a resumable training state every
  epoch, metrics history, TensorBoard, progress lines (into a StringIO), the non-finite-loss guard,
  and the validation image grid every 5 epochs.

What is timed (wall and process CPU time): for ``plain``, from optimizer creation to the end of the
last evaluation; for ``ignite_cv``, the training phase as ``fit`` measures it (``summary.json``'s
``phases[0].wall_time_s``: model wrapping, optimizer, engines, handlers, every epoch with its
validation and handlers). Loading the data, the normalization statistics, the test evaluation and the
report (once per run, after training) are outside both timings. Runs alternate (plain, ignite_cv,
plain, ...) after an untimed warm-up of each; the ratio is ignite_cv / plain per pair, and its median
is reported. Each timed span starts right after ``gc.collect()``: in one process, a full garbage
collection (about 0.2 s with torch, Ignite and scikit-learn loaded) otherwise lands in whichever run
crosses the collector's threshold, mostly the one that allocates more Python objects, and charges
it the garbage of all the runs before. On a machine shared with other jobs, pass ``--threads 1``:
with several threads and fewer free cores, OpenMP's barriers make both loops' times vary
several-fold. CPU time is then the steadier measure; wall time also counts fsync waits.

    python benchmarks/overhead.py                 # TinyVGG (16) and MLP, 3 epochs, 5 repeats each
    python benchmarks/overhead.py --quick         # 2 epochs, 2 repeats, 5k/1k images
    python benchmarks/overhead.py --breakdown     # also the time of each handler in one more run
    python benchmarks/overhead.py --profile       # also cProfile's top functions of one more run
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ignite_cv.config import TrainConfig  # noqa: E402
from ignite_cv.models import build_model, model_arg_names  # noqa: E402
from ignite_cv.models.options import MLPOptions, TinyVGGOptions  # noqa: E402

NUM_CLASSES = 10
SIZE = 28
LR, WEIGHT_DECAY = 1e-3, 1e-4


@dataclass
class Data:
    train_x: torch.Tensor  # uint8 (N, 1, 28, 28)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def make_data(n_train: int, n_val: int, n_test: int, seed: int) -> Data:
    """Class templates plus noise, so both loops learn something (and their accuracies can be compared)."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (NUM_CLASSES, SIZE, SIZE)).astype(np.float32)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = rng.integers(0, NUM_CLASSES, n)
        noise = rng.integers(0, 256, (n, SIZE, SIZE)).astype(np.float32)
        images = np.clip(0.4 * templates[labels] + 0.6 * noise, 0, 255).astype(np.uint8)
        return torch.from_numpy(images[:, None]), torch.from_numpy(labels.astype(np.int64))

    return Data(*split(n_train), *split(n_val), *split(n_test))


def write_npz(data: Data, path: Path) -> None:
    arrays = {}
    for part in ("train", "val", "test"):
        arrays[f"{part}_images"] = getattr(data, f"{part}_x")[:, 0].numpy()
        arrays[f"{part}_labels"] = getattr(data, f"{part}_y").numpy()
    np.savez(path, **arrays)


@dataclass
class _TinyVGGConfig(TinyVGGOptions, TrainConfig):
    hidden_units: int = 16


@dataclass
class _MLPConfig(MLPOptions, TrainConfig):
    pass


CONFIGS = {"tinyvgg": _TinyVGGConfig, "mlp": _MLPConfig}


def make_config(model: str, args: argparse.Namespace, npz: Path, output_dir: Path) -> TrainConfig:
    return CONFIGS[model](
        recipe="overhead",
        dataset="npz",
        data_root=str(npz),
        dropout=0.2,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        scheduler="none",
        normalize="meanstd",
        augment="none",
        workers=0,
        device=args.device,
        seed=args.seed,
        output_dir=str(output_dir),
        train_metrics=args.train_metrics,
        live_curves=args.live_curves == "yes",
    )


def arch_args(config: TrainConfig) -> dict:
    """The architecture arguments ``fit`` passes to the registry (the same model in both loops)."""
    values = {n: getattr(config, n) for n in model_arg_names(config.model) if hasattr(config, n)}
    return {n: list(v) if isinstance(v, tuple) else v for n, v in values.items()}


# -- (a) the hand-written loop ---------------------------------------------------------------------


def plain_run(
    config: TrainConfig, data: Data, device: torch.device, kernel: str = "default"
) -> tuple[float, float, float]:
    """Train and validate as a short hand-written script would; returns (wall s, CPU s, last val accuracy).

    ``kernel``: the optimizer implementation, ``default`` (what ``torch.optim.AdamW(params)`` picks: a
    per-tensor loop on the CPU) or ``fused`` (what ignite_cv uses where it can).
    """
    torch.manual_seed(config.seed)
    model = build_model(config.model, 1, (SIZE, SIZE), NUM_CLASSES, **arch_args(config)).to(device)
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    val_x, val_y = data.val_x.to(device), data.val_y.to(device)
    # Exact training-split statistics in [0, 1] units, as --normalize meanstd computes them (untimed).
    pixels = train_x.double().div(255.0)
    mean, std = pixels.mean().float(), pixels.std().float()
    bs, n, n_val = config.batch_size, len(train_y), len(val_y)
    gc.collect()  # both loops start timing on a collected heap (see the module docstring)
    start, cpu_start = time.perf_counter(), time.process_time()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=kernel == "fused" or None
    )
    accuracy = float("nan")
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + epoch)).to(device)
        for b in range(0, n, bs):
            idx = order[b : b + bs]
            x = train_x.index_select(0, idx).float().div_(255.0).sub_(mean).div_(std)
            loss = F.cross_entropy(model(x), train_y.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=device)
        with torch.inference_mode():
            for b in range(0, n_val, bs):
                x = val_x[b : b + bs].float().div_(255.0).sub_(mean).div_(std)
                correct += (model(x).argmax(dim=1) == val_y[b : b + bs]).sum()
        accuracy = correct.item() / n_val
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start, accuracy


# -- (b) ignite_cv's fit ---------------------------------------------------------------------------


def ignite_run(config: TrainConfig, profiler: cProfile.Profile | None = None) -> tuple[float, float, float]:
    """``fit`` with its console output captured; returns (phase wall s, phase CPU s, last val accuracy).

    The phase is timed around ``ignite_cv.training.loop.run_phase`` as ``fit`` calls it (what
    ``summary.json``'s ``phases[0].wall_time_s`` measures, without its rounding to 10 ms), by wrapping
    that function here; ``profiler``, if given, is enabled during the phase only.
    """
    from ignite_cv.training import fit as training

    spans: list[tuple[float, float]] = []
    run_phase = training.run_phase

    def timed_phase(*args, **kwargs):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            return run_phase(*args, **kwargs)
        finally:
            if profiler is not None:
                profiler.disable()
            spans.append((time.perf_counter() - wall, time.process_time() - cpu))

    training.run_phase = timed_phase
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            summary = training.fit(config)
    finally:
        training.run_phase = run_phase
    last = (Path(summary["run_dir"]) / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return spans[0][0], spans[0][1], json.loads(last)["val/accuracy"]


def _timed_targets() -> list[tuple[str, object, str]]:
    """(label, owner, attribute) of the handlers and steps :func:`breakdown` times, in ``fit``'s order.

    Owners are classes (their handlers are bound when attached, after this patching) or the
    ``ignite_cv.training.fit`` module for the functions it imported by name.
    """
    from ignite.metrics import EpochMetric, Loss, Metric

    from ignite_cv import metrics
    from ignite_cv.handlers import best_weights, checkpoint, history, nonfinite, progress, tensorboard
    from ignite_cv.training import curves
    from ignite_cv.training import fit as training
    from ignite_cv.utils.background_writer import BackgroundWriter

    return [
        (
            "per iteration: training loss and accuracy",
            metrics.TrainingLossAccuracy,
            "iteration_completed",
        ),
        (
            "  of which --train-metrics full: confusion matrix and kept scores (per fold)",
            metrics.TrainingClassificationMetrics,
            "_fold_predictions",
        ),
        ("per iteration: validation metric updates", Metric, "iteration_completed"),
        ("  of which confusion matrix", metrics.DeviceConfusionMatrix, "update"),
        ("  of which Loss", Loss, "update"),
        ("  of which ROC-AUC score collection", EpochMetric, "update"),
        ("per iteration: non-finite loss guard (record)", nonfinite.TerminateOnNonFiniteLoss, "_record"),
        ("per epoch: non-finite guard check (host sync)", nonfinite.TerminateOnNonFiniteLoss, "check"),
        ("per 10 iterations: TensorBoard learning rate", tensorboard.RunTensorBoard, "_log_lr"),
        ("per epoch: metric compute (all train + val metrics)", Metric, "completed"),
        ("  of which ROC-AUC compute (rank AUC, per class)", metrics.ShardedEpochMetric, "compute"),
        ("per epoch: best-weights copy", best_weights.BestWeights, "_on_evaluation"),
        (
            "per epoch: checkpoint copies (best and last; written by the writer thread)",
            checkpoint.SafetensorsSaver,
            "__call__",
        ),
        ("per epoch: training state capture (resume)", training, "capture"),
        ("per epoch: training state copy (snapshot_state)", training, "snapshot_state"),
        ("per epoch: waiting on the writer thread (queue full; phase end)", BackgroundWriter, "_collect"),
        ("per epoch: weights-finite check before the state", training, "_weights_finite"),
        ("per epoch: metrics history (append+fsync)", history.MetricsHistory, "append"),
        ("per epoch: TensorBoard scalars", tensorboard.RunTensorBoard, "_log_scalars"),
        ("per epoch: progress line", progress.ProgressReporter, "_on_validation"),
        ("every 5 epochs: validation image grid (PIL)", tensorboard.ValidationImageGrid, "_maybe_log"),
        ("per epoch: live curves request (drawn on their own thread)", curves.CurveDrawer, "request"),
        ("  live curves drawing (own thread, or at the end of training)", curves.CurveDrawer, "_run"),
    ]


def breakdown(config: TrainConfig, plain_seconds: float) -> None:
    """One ``fit`` with the handlers' own time measured (each wrapped by a timer); printed per item.

    The wrappers cost about a microsecond per call. Items nest (marked "of which"); the rest of the
    phase is the training and evaluation steps with Ignite's engine loop around them.
    """
    spent: dict[str, list[float]] = {}
    originals = []
    for label, owner, name in _timed_targets():
        original = getattr(owner, name)
        spent[label] = [0.0, 0]

        def timed(*args, _original=original, _entry=spent[label], **kwargs):
            begin = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                _entry[0] += time.perf_counter() - begin
                _entry[1] += 1

        functools.update_wrapper(timed, original)
        setattr(owner, name, timed)
        originals.append((owner, name, original))
    try:
        phase, _, _ = ignite_run(config)
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)
    epochs = config.epochs
    print(
        f"\nbreakdown of one ignite_cv run ({config.model}): training phase {phase:.3f}s, plain loop "
        f"{plain_seconds:.3f}s (median), difference {phase - plain_seconds:+.3f}s = "
        f"{1000 * (phase - plain_seconds) / epochs:+.1f} ms/epoch"
    )
    print(f"  {'item':<72} {'ms/epoch':>9} {'calls':>6} {'% of plain':>10}")
    for label, (seconds, calls) in spent.items():
        if calls:
            share = 100 * seconds / plain_seconds
            print(f"  {label:<72} {1000 * seconds / epochs:9.1f} {calls:6d} {share:9.1f}%")


def profile_ignite(config: TrainConfig, top: int) -> None:
    """Run ``fit`` once with cProfile on during the training phase; print the top functions."""
    profiler = cProfile.Profile()
    phase, _, _ = ignite_run(config, profiler)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(f"\ncProfile of one ignite_cv training phase ({config.model}; {phase:.2f}s under the profiler)")
    print(text.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tinyvgg,mlp", help="comma-separated registry names")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop, alternating")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train", type=int, default=10_000, help="training images")
    parser.add_argument("--val", type=int, default=2_000, help="validation images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--plain-optimizer",
        default="default,fused",
        help="optimizer kernels of the plain loop, each timed against the same ignite_cv runs: default "
        "(PyTorch's choice for a plain AdamW(params), as a hand-written loop has it), fused (ignite_cv's "
        "choice: the ratio is then the loop and handler overhead alone)",
    )
    parser.add_argument(
        "--train-metrics", default="basic", choices=("basic", "full"), help="ignite_cv's --train-metrics"
    )
    parser.add_argument(
        "--live-curves",
        default="yes",
        choices=("yes", "no"),
        help="ignite_cv's --live-curves (report/curves.png)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 repeats, 5k/1k images")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each handler in one more ignite_cv run per model"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile one ignite_cv run per model")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.train, args.val = 2, 2, 5_000, 1_000
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("ignite.distributed.launcher.Parallel").setLevel(logging.WARNING)

    data = make_data(args.train, args.val, 1_000, args.seed)
    print(
        f"{args.train} train / {args.val} val images 1×{SIZE}×{SIZE}, batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.repeats} repeats, {torch.get_num_threads()} threads, {device}; "
        f"ignite_cv with --train-metrics {args.train_metrics} --live-curves {args.live_curves}",
        flush=True,
    )
    all_ratios: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="ignite_cv-overhead-") as tmp:
        npz = Path(tmp) / "synthetic.npz"
        write_npz(data, npz)
        for model in args.models.split(","):
            config = make_config(model, args, npz, Path(tmp) / "runs")
            warm = make_config(model, args, npz, Path(tmp) / "runs")
            warm.epochs = 1
            kernels = args.plain_optimizer.split(",")
            for kernel in kernels:  # untimed warm-up of each loop (first kernels, allocator, imports)
                plain_run(warm, data, device, kernel)
            ignite_run(warm)
            plain_times: dict[str, list] = {k: [] for k in kernels}
            ignite_times = []
            for repeat in range(args.repeats):
                line = []
                for kernel in kernels:
                    plain = plain_run(config, data, device, kernel)
                    plain_times[kernel].append(plain[:2])
                    line.append(f"plain/{kernel} {plain[0]:5.2f}s {plain[1]:5.2f}s CPU (acc {plain[2]:.3f})")
                ignite = ignite_run(config)
                ignite_times.append(ignite[:2])
                line.append(f"ignite_cv {ignite[0]:5.2f}s {ignite[1]:5.2f}s CPU (acc {ignite[2]:.3f})")
                print(f"{model} #{repeat + 1}: " + " | ".join(line), flush=True)
            for kernel in kernels:
                for kind, k in (("wall", 0), ("CPU", 1)):
                    ratios = [b[k] / a[k] for a, b in zip(plain_times[kernel], ignite_times)]
                    all_ratios[kernel, kind] += ratios
                    print(
                        f"{model} {kind}, plain loop with the {kernel} optimizer kernel: median plain "
                        f"{statistics.median(a[k] for a in plain_times[kernel]):.2f}s, ignite_cv "
                        f"{statistics.median(b[k] for b in ignite_times):.2f}s; median ratio ignite_cv/plain "
                        f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})",
                        flush=True,
                    )
            if args.breakdown:
                breakdown(config, statistics.median(a[0] for a in plain_times[kernels[0]]))
            if args.profile:
                profile_ignite(config, args.top)
    for (kernel, kind), ratios in all_ratios.items():
        print(
            f"all models, {kind} time, plain loop with the {kernel} optimizer kernel: median ratio "
            f"ignite_cv/plain {statistics.median(ratios):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
