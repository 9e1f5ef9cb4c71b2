"""The training config: one dataclass composed of the option classes of each concern.

Each concern declares its options next to its code (``data/options.py``, ``pipeline/options.py``,
``models/options.py``, ``prune/options.py``, ``profile/options.py``) or, for the training loop itself,
below; :class:`TrainConfig` combines them. A recipe subclasses it with its model's option class
(``class TinyVGGRecipe(TinyVGGOptions, TrainConfig)``) and redeclares the defaults it changes. Flags,
``--help`` and ``config.json`` are generated from the fields (:mod:`ignite_cv.utils.options`); tools
compose the same classes (e.g. :class:`ComputeOptions`, :class:`DistributedOptions`), so a flag means
the same thing everywhere. Consumers build their own option objects from a config
(``StepOptions.from_config``, ``PruneOptions.from_config``) and never restate a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from ignite_cv.binary import DecisionOptions
from ignite_cv.data.options import DataOptions, FoldOptions, SamplerOptions
from ignite_cv.defaults import resolve_defaults
from ignite_cv.explain.options import ExplainOptions
from ignite_cv.models.options import OPTIMIZERS, SCHEDULERS, ModelOptions
from ignite_cv.pipeline.options import PipelineOptions
from ignite_cv.profile.options import ProfileOptions
from ignite_cv.prune.options import PruneAfterOptions
from ignite_cv.task import LossOptions
from ignite_cv.utils.options import option, parse_options

C = TypeVar("C", bound="TrainConfig")

AMP = ("none", "bf16", "fp16")
#: ``--train-metrics``: the training stream's metrics (see ``ignite_cv.metrics.training_metrics``).
TRAIN_METRICS = ("basic", "full")
#: ``--lr-find``: off, suggest (plot and suggestion in the run folder), apply (also train with it).
LR_FIND = ("off", "suggest", "apply")


@dataclass
class OptimizerOptions:
    """The optimizer's kind and settings besides the learning rate (shared with ``tools/prune.py``)."""

    optimizer: str = option("adamw", "optimizer", choices=OPTIMIZERS)
    momentum: float = option(0.9, "SGD momentum (ignored by Adam/AdamW)", minimum=0.0, maximum=1.0)
    weight_decay: float = option(1e-4, "decoupled (AdamW) or L2 (SGD, Adam) weight decay", minimum=0.0)


@dataclass
class BatchOptions:
    batch_size: int = option(
        128,
        "global batch size: the number of samples per optimizer step summed over all processes "
        "(each of N processes takes batch_size/N); with --accumulate-steps k one step sees k batches",
        minimum=1,
    )


@dataclass
class LRScheduleOptions:
    scheduler: str = option("onecycle", "learning-rate schedule", choices=SCHEDULERS)
    lr_warmup_epochs: float = option(
        0.0, "linear warm-up from lr/10 to lr over this many epochs (not for onecycle)", minimum=0.0
    )
    step_size: int = option(10, "epochs between LR decays (--scheduler step)", minimum=1)
    gamma: float = option(0.1, "LR decay factor (--scheduler step)", minimum=1e-12, maximum=1.0)
    plateau_monitor: str = option(
        "loss",
        "--scheduler plateau: the validation metric it watches, on its own (early stopping and the best "
        "model follow --monitor); 'loss' or any validation metric name",
    )
    plateau_mode: str = option(
        "auto",
        "--scheduler plateau: whether --plateau-monitor should fall or rise (auto: min for loss, else max)",
        choices=("auto", "max", "min"),
    )
    plateau_factor: float = option(
        0.1, "--scheduler plateau: LR multiplier at each decay", minimum=1e-12, maximum=1.0
    )
    plateau_patience: int = option(
        3, "--scheduler plateau: evaluations without improvement before the LR decays", minimum=0
    )


@dataclass
class OptimOptions(LRScheduleOptions, BatchOptions, OptimizerOptions):
    epochs: int = option(
        10,
        "maximum number of training epochs, of all phases together (finetune: warm-up + fine-tuning)",
        minimum=1,
    )
    lr: float = option(
        1e-3,
        "peak learning rate for a single process; under N processes keep it when the global batch is kept",
        minimum=1e-12,
    )
    label_smoothing: float = option(
        0.0, "label smoothing for cross-entropy (multi-class only)", minimum=0.0, maximum=0.99
    )
    grad_clip: float = option(0.0, "clip the global gradient norm to this value (0 = off)", minimum=0.0)
    accumulate_steps: int = option(
        1, "accumulate gradients over this many batches per optimizer step", minimum=1
    )


@dataclass
class ComputeOptions:
    """Where and how the model computes (training, evaluation and the tools alike)."""

    device: str = option("auto", "device: auto (cuda if available), cpu, cuda, cuda:N")
    amp: str = option("none", "mixed precision autocast dtype", choices=AMP)
    channels_last: bool = option(False, "use the channels_last memory format for the model and its input")


@dataclass
class SeedOptions:
    seed: int = option(
        0,
        "random seed for the split, the initialisation, the data order and augmentation",
        minimum=0,
        maximum=2**32 - 1,  # NumPy's seeds (Ignite's manual_seed seeds NumPy too)
    )


@dataclass
class DistributedOptions:
    nproc_per_node: int = option(
        0, "spawn this many processes on this machine (0 = one, or torchrun's)", minimum=0
    )
    backend: str = option(
        "auto",
        "distributed backend: auto (nccl on GPUs, gloo on CPU), nccl, gloo",
        choices=("auto", "nccl", "gloo"),
    )


@dataclass
class MonitorOptions:
    """Which validation metric decides "best" (early stopping, best checkpoints, fine-tuning's best)."""

    monitor: str = option(
        "auto",
        "validation metric for early stopping and the best checkpoint (auto: accuracy, "
        "roc_auc for two classes); any validation metric name, or 'loss'",
    )
    monitor_mode: str = option(
        "auto", "whether the monitored metric should rise or fall", choices=("auto", "max", "min")
    )


@dataclass
class ProgressOptions:
    log_every: int = option(
        50,
        "iterations between progress-bar loss updates and non-finite loss checks (each one host sync)",
        minimum=1,
    )


@dataclass
class LoopOptions(ProgressOptions, MonitorOptions):
    deterministic: bool = option(False, "use deterministic algorithms (repeatable runs on the CPU)")
    patience: int = option(
        0, "early stopping: evaluations without improvement before stopping (0 = off)", minimum=0
    )
    keep_best: int = option(2, "how many best checkpoints to keep", minimum=1)
    image_grid_every: int = option(
        5, "log a grid of validation images with predictions every N epochs (0 = off)", minimum=0
    )
    sync_bn: bool = option(False, "distributed: synchronise BatchNorm statistics across processes")
    train_metrics: str = option(
        "basic",
        "metrics of the training batches each epoch: basic (loss, accuracy) or full (also per-class and "
        "macro precision, recall, F1, ROC-AUC and the confusion matrix, computed on the device)",
        choices=TRAIN_METRICS,
    )
    live_curves: bool = option(
        True,
        "keep report/curves.png (loss and metrics per epoch, training and validation, phases shaded) "
        "up to date while training; drawn off the training thread, in at most a twentieth of the run's time",
    )


@dataclass
class LRFinderOptions:
    """Ignite's LR range test (``FastaiLRFinder``) before training (``ignite_cv/training/lr_finder.py``)."""

    lr_find: str = option(
        "off",
        "run the LR range test before training: suggest writes lr_find.png and lr_find.json into the run "
        "folder; apply also trains with the suggested LR (the first phase's --lr, or --head-lr for a "
        "head phase); --lr-find alone means suggest",
        choices=LR_FIND,
        const="suggest",
    )
    lr_find_iterations: int = option(
        100, "LR finder: training steps from --lr-find-start to --lr-find-end", minimum=5
    )
    lr_find_start: float = option(1e-7, "LR finder: the first learning rate", minimum=1e-12)
    lr_find_end: float = option(
        10.0, "LR finder: the last learning rate (it stops early when the loss diverges)", minimum=1e-12
    )


@dataclass
class RunOptions:
    output_dir: str = option("runs", "folder that holds run folders")
    run_name: str = option("", "name of the run folder (default: <recipe>-<timestamp>)")
    resume: str = option(
        "",
        "continue a run from its newest valid training state: RUN_DIR, or 'auto' for the newest run of this "
        "recipe in --output-dir; the run's saved config is used",
    )
    checkpoint_every: int = option(
        0, "also save a training state every N iterations (0 = after each epoch only)", minimum=0
    )
    keep_states: int = option(2, "how many training states (for --resume) to keep", minimum=1)


@dataclass
class TrainConfig(
    ExplainOptions,
    DecisionOptions,
    LossOptions,
    SamplerOptions,
    PruneAfterOptions,
    ProfileOptions,
    RunOptions,
    DistributedOptions,
    LRFinderOptions,
    LoopOptions,
    SeedOptions,
    ComputeOptions,
    OptimOptions,
    PipelineOptions,
    ModelOptions,
    FoldOptions,
    DataOptions,
):
    """Every option of a training run but the model's own (a recipe mixes in its model's options)."""

    recipe: str = option("train", "recipe name, the run folder's prefix")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_config(cls: type[C], argv: list[str] | None = None, description: str | None = None) -> C:
    """Parse ``argv`` into the recipe config ``cls``: defaults ← ``--config FILE`` ← flags, then the
    settings of the training's kind for what neither set (:func:`ignite_cv.defaults.resolve_defaults`)."""
    return resolve_defaults(parse_options(cls, argv, description))
