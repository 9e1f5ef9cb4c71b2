"""Evaluate a checkpoint on a data split: the run's metrics and test report, rebuilt from the file alone.

The model, class names, input size, channels and normalization come from the checkpoint's metadata; the
data set is loaded as in training and resized to the model's input (``--image-size``/``--channels``
default to the checkpoint's). The report (confusion matrix, classification report, ROC, most confident
mistakes) and ``metrics.json`` go into a new folder, by default ``report-<split>-<dataset>`` beside the
run's ``checkpoints/`` (``-2``, ``-3``... when it exists: nothing is overwritten); the checkpoint is only
read. Several processes (``torchrun --nproc_per_node N tools/evaluate.py ...`` or ``--nproc-per-node N``)
each evaluate a shard; rank 0 writes and prints. Examples::

    python tools/evaluate.py runs/tinyvgg-X/checkpoints/best_epoch=9_accuracy=0.9812.safetensors \\
        --dataset digits
    python tools/evaluate.py best.safetensors --dataset fashion-mnist \\
        --data-root ../shared/data/fashion-mnist --split val --output-dir reports/fmnist-val
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message, f"see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    from ignite_cv.data.options import add_data_arguments
    from ignite_cv.evaluation import SPLITS

    parser = _Parser(description=__doc__.splitlines()[0], prog="tools/evaluate.py")
    parser.add_argument("checkpoint", help="an ignite_cv .safetensors checkpoint (only read)")
    data = add_data_arguments(parser)
    data.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate (default: test)")
    data.add_argument(
        "--image-size", type=int, default=0, help="square size in pixels (default: the checkpoint's)"
    )
    data.add_argument("--channels", type=int, default=0, help="1 or 3 (default: the checkpoint's)")
    run = parser.add_argument_group("evaluation")
    run.add_argument("--batch-size", type=int, default=256, help="global batch size (default: 256)")
    run.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    run.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="autocast dtype")
    run.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    run.add_argument(
        "--nproc-per-node", type=int, default=0, help="spawn this many processes (0 = one, or torchrun's)"
    )
    run.add_argument(
        "--backend", default="auto", choices=("auto", "nccl", "gloo"), help="distributed backend"
    )
    parser.add_argument(
        "--output-dir",
        default="",
        help="report folder (default: <checkpoint's folder>/../report-<split>-<dataset>; a suffix is "
        "added when it exists)",
    )
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    """Parse, evaluate, print the metrics and report folder; returns the metrics (rank 0, not spawned)."""
    args = build_parser().parse_args(argv)
    if args.threads < 0 or args.nproc_per_node < 0:
        raise UserError("--threads and --nproc-per-node must be >= 0", "fix the flag")
    import torch

    from ignite_cv.evaluation import EvaluationOptions, evaluate_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    _quiet_libraries()
    options = EvaluationOptions(
        dataset=args.dataset,
        data_root=args.data_root,
        val_fraction=args.val_fraction,
        image_size=args.image_size,
        center_crop=args.center_crop,
        channels=args.channels,
        workers=args.workers,
        batch_size=args.batch_size,
        amp=args.amp,
        seed=args.seed,
        backend=args.backend,
        nproc_per_node=args.nproc_per_node,
    )
    # Rank 0 prints the metrics and the report folder itself (a spawned process returns nothing here).
    return evaluate_checkpoint(args.checkpoint, options, args.split, args.device, args.output_dir or None)


def _quiet_libraries() -> None:
    """Third-party deprecation chatter and Ignite's launcher info lines are not the user's business."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(ignite|kornia|torch)\b")
    logging.getLogger("ignite.distributed.launcher.Parallel").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
