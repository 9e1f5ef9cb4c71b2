"""Prune a checkpoint's channels, fine-tune it, compare before/after (accuracy, size, MACs, latency).

Structured channel pruning with torch-pruning: give exactly one of ``--ratio R`` (fraction of channels
removed), ``--target-macs M`` (e.g. ``5M``) or ``--speedup X`` (MACs divided by X). Channels are ranked by
``--importance`` (magnitude, taylor, bn-scale), per layer (default) or across layers (``--global``), in
``--iterative-steps`` steps; the classifier keeps its outputs. Fine-tuning runs the training loop for
``--finetune-epochs`` (cosine from ``--finetune-lr``, best validation epoch kept). The data set must be
the one the model was trained on: image size and channels come from the checkpoint.

Output: a new folder ``<output-dir>/prune-<time>/`` with ``pruned.safetensors`` (weights + metadata with the
pruning history as JSON, so every tool and ``--weights`` rebuild it), ``pruning.md`` / ``pruning.json``
(the before/after table) and ``finetune_metrics.jsonl``. The input checkpoint is only read. Example::

    python tools/prune.py runs/tinyvgg-X/checkpoints/best.safetensors --dataset fashion-mnist \\
        --data-root ../shared/data/fashion-mnist --speedup 2 --finetune-epochs 3
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.cli import quiet_libraries  # noqa: E402
from ignite_cv.config import (  # noqa: E402
    BatchOptions,
    ComputeOptions,
    MonitorOptions,
    OptimizerOptions,
    ProgressOptions,
    SeedOptions,
)
from ignite_cv.data.options import DataOptions  # noqa: E402
from ignite_cv.prune.options import PruneOptions  # noqa: E402
from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import option, parse_options  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

CHECKPOINT = ("checkpoint", {"help": "an ignite_cv .safetensors checkpoint (only read)"})


@dataclass
class PruneToolOptions(
    ProgressOptions,
    MonitorOptions,
    SeedOptions,
    ComputeOptions,
    BatchOptions,
    OptimizerOptions,
    DataOptions,
    PruneOptions,
):
    finetune_lr: float = option(1e-3, "fine-tuning peak learning rate (cosine schedule)", minimum=1e-12)
    device: str = "cpu"
    output_dir: str = option("runs", "folder that receives the prune-<time> folder")
    run_name: str = option("", "name of that folder (default: prune-<time>)")
    threads: int = option(0, "CPU threads for torch (0 = torch's default)", minimum=0)


def load_matching_data(options: PruneToolOptions, card):
    """The data set, shaped like the checkpoint's input (size and channels), with the same classes."""
    import dataclasses

    from ignite_cv.data.sources import load_data

    height, width = card.image_size
    if height != width:
        raise UserError(
            f"the checkpoint expects {height}×{width} images and data sets are resized to squares",
            "prune this model from Python with ignite_cv.prune.workflow.prune_and_finetune",
        )
    data = load_data(dataclasses.replace(options, image_size=height, channels=card.in_channels), options.seed)
    if list(data.class_names) != list(card.class_names):
        raise UserError(
            f"--dataset {options.dataset} has classes {_short(data.class_names)} but the checkpoint was "
            f"trained on {_short(card.class_names)}",
            "pass the data set the model was trained on",
        )
    return data


def _short(names: list[str]) -> str:
    return "[" + ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") + f"] ({len(names)})"


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    options, args = parse_options(PruneToolOptions, argv, __doc__, "tools/prune.py", [CHECKPOINT])
    options.check()  # bad flags fail before any data is read
    import torch

    from ignite_cv.pipeline.batch_pipeline import BatchPipeline
    from ignite_cv.pipeline.normalize import build_normalizer
    from ignite_cv.prune.workflow import prune_and_finetune
    from ignite_cv.run_folder import RunFolder
    from ignite_cv.task import ClassificationTask
    from ignite_cv.utils.allocator import tune_cpu_allocator
    from ignite_cv.utils.devices import resolve_device
    from ignite_cv.weights import load_model

    if options.threads:
        torch.set_num_threads(options.threads)
    quiet_libraries()
    tune_cpu_allocator()  # fine-tuning is a training loop: keep its buffers in the heap
    device = resolve_device(options.device)
    checkpoint = Path(args["checkpoint"])
    model, card = load_model(checkpoint, device)
    data = load_matching_data(options, card)
    task = ClassificationTask(card.num_classes)
    if task.num_outputs != card.num_outputs:
        raise UserError(
            f"{checkpoint} has {card.num_outputs} outputs for {card.num_classes} classes",
            "use a checkpoint written by ignite_cv",
        )
    pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)
    run = RunFolder.create(options.output_dir, "prune", options.run_name)
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
            options,
            options.finetune_lr,
            say=lambda m: print(m, flush=True),
        )
    except UserError:
        if not any(run.path.iterdir()):
            run.path.rmdir()  # nothing was written: leave no empty folder behind
        raise
    summary["source_checkpoint"] = str(checkpoint)
    summary["args"] = {**vars(options), "checkpoint": str(checkpoint)}
    run.write_json("pruning.json", summary)
    return summary


if __name__ == "__main__":
    main()
    end_process()
