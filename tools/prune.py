"""Prune a checkpoint's channels, fine-tune it, compare before/after (accuracy, size, MACs, latency).

Structured channel pruning with torch-pruning: give exactly one of ``--ratio R`` (fraction of channels
removed), ``--target-macs M`` (e.g. ``5M``) or ``--speedup X`` (MACs divided by X). Channels are ranked by
``--importance`` (magnitude, taylor, bn-scale), per layer (default) or across layers (``--global``), in
``--iterative-steps`` steps; the classifier keeps its outputs. Fine-tuning uses the training engines for
``--finetune-epochs`` (cosine from ``--lr``, best validation epoch kept). The data set must be the one the
model was trained on: image size and channels come from the checkpoint.

Output: a new folder ``<output-dir>/prune-<time>/`` with ``pruned.safetensors`` (weights + metadata with the
pruning history as JSON, so every tool and ``--weights`` rebuild it), ``pruning.md`` / ``pruning.json``
(the before/after table) and ``finetune_metrics.jsonl``. The input checkpoint is only read. Example::

    python tools/prune.py runs/tinyvgg-X/checkpoints/best.safetensors --dataset fashion-mnist \\
        --data-root ../shared/data/fashion-mnist --speedup 2 --finetune-epochs 3
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

import torch  # noqa: E402

from ignite_cv.utils.devices import resolve_device  # noqa: E402
from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402

_SUFFIXES = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message, f"see {self.prog} --help")


def parse_count(text: str) -> float:
    """``'5e6'``, ``'5M'``, ``'2.5g'``, ``'300k'`` → a number."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgKMG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a count such as 5e6, 5M or 300k, got {text!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2).lower()]


def build_parser() -> argparse.ArgumentParser:
    from ignite_cv.data.options import add_data_arguments
    from ignite_cv.pruning import IMPORTANCES

    parser = _Parser(description=__doc__.splitlines()[0], prog="tools/prune.py")
    parser.add_argument("checkpoint", help="an ignite_cv .safetensors checkpoint (only read)")
    target = parser.add_argument_group("how much to prune (exactly one)")
    target.add_argument("--ratio", type=float, help="fraction of channels to remove, in (0, 1)")
    target.add_argument(
        "--target-macs",
        type=parse_count,
        metavar="M",
        help="largest MAC count (one image) of the pruned model, e.g. 5M",
    )
    target.add_argument("--speedup", type=float, metavar="X", help="divide the MACs by at least X (> 1)")
    parser.add_argument(
        "--importance",
        default="magnitude",
        choices=IMPORTANCES,
        help="channel ranking: weight magnitude, first-order Taylor (uses training batches) or "
        "BatchNorm scale (default: magnitude)",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--global",
        dest="global_pruning",
        action="store_true",
        help="rank channels across layers (layers lose different fractions)",
    )
    scope.add_argument(
        "--uniform",
        dest="global_pruning",
        action="store_false",
        help="remove the same fraction from every layer (default)",
    )
    parser.add_argument("--iterative-steps", type=int, default=1, help="reach the ratio in this many steps")
    add_data_arguments(parser)
    tune = parser.add_argument_group("fine-tuning")
    tune.add_argument("--finetune-epochs", type=int, default=3, help="epochs of fine-tuning (0 = none)")
    tune.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine schedule)")
    tune.add_argument("--optimizer", default="adamw", choices=("sgd", "adam", "adamw"))
    tune.add_argument("--weight-decay", type=float, default=1e-4)
    tune.add_argument(
        "--batch-size", type=int, default=128, help="training/evaluation batch; also a latency batch"
    )
    tune.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:N or auto; latency is measured there"
    )
    parser.add_argument("--latency-repeats", type=int, default=30, help="timed forward passes per batch size")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--output-dir", default="runs", help="folder that receives the prune-<time> folder")
    parser.add_argument("--run-name", default="", help="name of that folder (default: prune-<time>)")
    return parser


def load_matching_data(args: argparse.Namespace, card):
    """The data set, shaped like the checkpoint's input (size and channels), with the same classes."""
    from ignite_cv.data.options import DataOptions
    from ignite_cv.data.sources import load_data

    height, width = card.image_size
    if height != width:
        raise UserError(
            f"the checkpoint expects {height}×{width} images and data sets are resized to squares",
            "prune this model from Python with ignite_cv.pruning.prune_and_finetune",
        )
    options = DataOptions(
        dataset=args.dataset,
        data_root=args.data_root,
        val_fraction=args.val_fraction,
        image_size=height,
        center_crop=args.center_crop,
        channels=card.in_channels,
        workers=args.workers,
    )
    data = load_data(options, args.seed)
    if list(data.class_names) != list(card.class_names):
        raise UserError(
            f"--dataset {args.dataset} has classes {_short(data.class_names)} but the checkpoint was "
            "trained on "
            f"{_short(card.class_names)}",
            "pass the data set the model was trained on",
        )
    return data


def _short(names: list[str]) -> str:
    return "[" + ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") + f"] ({len(names)})"


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.threads < 0 or args.latency_repeats < 1 or args.workers < 0:
        raise UserError("--threads and --workers must be >= 0 and --latency-repeats >= 1", "fix the flag")
    if args.threads:
        torch.set_num_threads(args.threads)
    from ignite_cv.engine import StepOptions
    from ignite_cv.pipeline.batch_pipeline import BatchPipeline
    from ignite_cv.pipeline.normalize import build_normalizer
    from ignite_cv.pruning import PruneOptions, prune_and_finetune
    from ignite_cv.run_folder import RunFolder
    from ignite_cv.task import ClassificationTask
    from ignite_cv.utils.allocator import tune_cpu_allocator
    from ignite_cv.weights import load_model

    tune_cpu_allocator()  # fine-tuning is a training loop: keep its buffers in the heap
    options = PruneOptions(
        ratio=args.ratio,
        target_macs=args.target_macs,
        speedup=args.speedup,
        importance=args.importance,
        global_pruning=args.global_pruning,
        iterative_steps=args.iterative_steps,
        finetune_epochs=args.finetune_epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        seed=args.seed,
        workers=args.workers,
        center_crop=args.center_crop,
        latency_repeats=args.latency_repeats,
    )
    options.check()  # bad flags fail before any data is read
    device = resolve_device(args.device)
    checkpoint = Path(args.checkpoint)
    model, card = load_model(checkpoint, device)
    data = load_matching_data(args, card)
    task = ClassificationTask(card.num_classes)
    if task.num_outputs != card.num_outputs:
        raise UserError(
            f"{checkpoint} has {card.num_outputs} outputs for {card.num_classes} classes",
            "use a checkpoint written by ignite_cv",
        )
    pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)
    run = RunFolder.create(args.output_dir, "prune", args.run_name)
    print(f"pruning {checkpoint} ({card.arch}) into {run.path}", flush=True)
    try:
        summary = prune_and_finetune(
            model,
            card,
            data,
            task,
            pipeline,
            device,
            run.path,
            options,
            StepOptions(amp=args.amp),
            say=lambda m: print(m, flush=True),
        )
    except UserError:
        if not any(run.path.iterdir()):
            run.path.rmdir()  # nothing was written: leave no empty folder behind
        raise
    summary["source_checkpoint"] = str(checkpoint)
    summary["args"] = {k: v for k, v in vars(args).items()}
    run.write_json("pruning.json", summary)
    return summary


if __name__ == "__main__":
    main()
