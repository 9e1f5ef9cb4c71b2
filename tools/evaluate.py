"""Evaluate a checkpoint on a data split: the run's metrics and test report, rebuilt from the file alone.

The model, class names, input size, channels and normalization come from the checkpoint's metadata; the
data set is loaded as in training and resized to the model's input (``--image-size``/``--channels``
default to the checkpoint's). The report (confusion matrix, classification report, ROC, most confident
mistakes) and ``metrics.json`` go into a new folder, by default ``report-<split>-<dataset>`` beside the
run's ``checkpoints/`` (``-2``, ``-3``... when it exists: nothing is overwritten); the checkpoint is only
read. Several processes (``torchrun --nproc_per_node N tools/evaluate.py ...`` or ``--nproc-per-node N``)
each evaluate a shard; rank 0 writes and prints. An ensemble manifest (``ensemble.json`` of
``tools/ensemble.py`` or of a ``--folds`` study) evaluates the ensemble, each member with its own
preprocessing; a member whose file changed since the manifest was written is refused. Examples:

    python tools/evaluate.py runs/tinyvgg-X/checkpoints/best_epoch=9_accuracy=0.9812.safetensors \\
        --dataset digits
    python tools/evaluate.py best.safetensors --dataset fashion-mnist \\
        --data-root ../shared/data/fashion-mnist --split val --output-dir reports/fmnist-val
"""

from __future__ import annotations

import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.cli import quiet_libraries  # noqa: E402
from ignite_cv.utils.errors import exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import parse_options  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

CHECKPOINT = (
    "checkpoint",
    {"help": "an ignite_cv .safetensors checkpoint, or an ensemble manifest .json (only read)"},
)


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    """Parse, evaluate, print the metrics and report folder; returns the metrics (rank 0, not spawned)."""
    from ignite_cv.evaluation import EvaluationOptions, evaluate_checkpoint

    options, args = parse_options(EvaluationOptions, argv, __doc__, "tools/evaluate.py", [CHECKPOINT])
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    quiet_libraries()
    # Rank 0 prints the metrics and the report folder itself (a spawned process returns nothing here).
    if args["checkpoint"].lower().endswith(".json"):  # an ensemble manifest (tools/ensemble.py, a study's)
        from ignite_cv.ensemble.evaluate import EnsembleOptions, evaluate_manifest

        return evaluate_manifest(args["checkpoint"], EnsembleOptions(**vars(options)))
    return evaluate_checkpoint(args["checkpoint"], options)


if __name__ == "__main__":
    main()
    end_process()
