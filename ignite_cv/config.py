"""Configuration as data: dataclasses are the one source of defaults, CLI flags and ``config.json``.

Each concern declares its options next to its code (``data/options.py``, ``pipeline/options.py``,
``models/options.py``); :class:`TrainConfig` combines them with the training options below. A recipe
subclasses it and redeclares the defaults it changes. :func:`parse_config` generates one
``--flag`` per field (underscores become dashes), reads ``--config FILE`` first (a saved
``config.json``) and lets flags given on the command line override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ignite_cv.data.options import DataOptions
from ignite_cv.models.options import ModelOptions
from ignite_cv.pipeline.options import PipelineOptions
from ignite_cv.profiling import ProfileOptions
from ignite_cv.pruning import PruneAfterOptions
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option

C = TypeVar("C", bound="TrainConfig")


@dataclass
class OptimOptions:
    epochs: int = option(10, "maximum number of training epochs")
    batch_size: int = option(
        128,
        "global batch size: the number of samples per optimizer step summed over all processes "
        "(each of N processes takes batch_size/N); with --accumulate-steps k one step sees k batches",
    )
    lr: float = option(
        1e-3,
        "peak learning rate for a single process; under N processes keep it when the global batch is kept",
    )
    optimizer: str = option("adamw", "optimizer", choices=("sgd", "adam", "adamw"))
    momentum: float = option(0.9, "SGD momentum (ignored by Adam/AdamW)")
    weight_decay: float = option(1e-4, "decoupled (AdamW) or L2 (SGD, Adam) weight decay")
    scheduler: str = option(
        "onecycle", "learning-rate schedule", choices=("plateau", "cosine", "step", "onecycle", "none")
    )
    lr_warmup_epochs: float = option(
        0.0, "linear warm-up from lr/10 to lr over this many epochs (not for onecycle)"
    )
    step_size: int = option(10, "epochs between LR decays (--scheduler step)")
    gamma: float = option(0.1, "LR decay factor (--scheduler step and plateau)")
    plateau_patience: int = option(
        3, "evaluations without improvement before the LR decays (--scheduler plateau)"
    )
    label_smoothing: float = option(0.0, "label smoothing for cross-entropy (multi-class only)")
    grad_clip: float = option(0.0, "clip the global gradient norm to this value (0 = off)")
    accumulate_steps: int = option(1, "accumulate gradients over this many batches per optimizer step")


@dataclass
class LoopOptions:
    amp: str = option("none", "mixed precision autocast dtype", choices=("none", "bf16", "fp16"))
    channels_last: bool = option(False, "use the channels_last memory format for the model and its input")
    device: str = option("auto", "device: auto (cuda if available), cpu, cuda, cuda:N")
    seed: int = option(0, "random seed for the split, the initialisation, the data order and augmentation")
    deterministic: bool = option(False, "use deterministic algorithms (repeatable runs on the CPU)")
    monitor: str = option(
        "auto",
        "validation metric for early stopping and the best checkpoint (auto: accuracy, "
        "roc_auc for two classes); any validation metric name, or 'loss'",
    )
    monitor_mode: str = option(
        "auto", "whether the monitored metric should rise or fall", choices=("auto", "max", "min")
    )
    patience: int = option(0, "early stopping: evaluations without improvement before stopping (0 = off)")
    keep_best: int = option(2, "how many best checkpoints to keep")
    image_grid_every: int = option(
        5, "log a grid of validation images with predictions every N epochs (0 = off)"
    )
    sync_bn: bool = option(False, "distributed: synchronise BatchNorm statistics across processes")
    log_every: int = option(50, "iterations between progress-bar loss updates (each costs one host sync)")


@dataclass
class RunOptions:
    output_dir: str = option("runs", "folder that holds run folders")
    run_name: str = option("", "name of the run folder (default: <recipe>-<timestamp>)")
    nproc_per_node: int = option(0, "spawn this many processes on this machine (0 = one, or torchrun's)")
    backend: str = option("auto", "distributed backend: auto (nccl on GPUs, gloo on CPU), nccl, gloo")
    resume: str = option(
        "",
        "continue a run from its newest valid training state: RUN_DIR, or 'auto' for the newest run of this "
        "recipe in --output-dir; the run's saved config is used",
    )
    checkpoint_every: int = option(
        0, "also save a training state every N iterations (0 = after each epoch only)"
    )
    keep_states: int = option(2, "how many training states (for --resume) to keep")


@dataclass
class TrainConfig(
    PruneAfterOptions,
    ProfileOptions,
    RunOptions,
    LoopOptions,
    OptimOptions,
    PipelineOptions,
    ModelOptions,
    DataOptions,
):
    """Every option of a training run. Recipes subclass this and change defaults."""

    recipe: str = option("train", "recipe name, the run folder's prefix")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def field_metadata(cls: type, name: str) -> dict[str, Any]:
    """Help text and choices of field ``name``: a recipe that only changes a default inherits them."""
    for klass in cls.__mro__:
        own = getattr(klass, "__dataclass_fields__", {}).get(name)
        if own is not None and own.metadata:
            return dict(own.metadata)
    return {}


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[f.name]


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes/no, got {text!r}")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def build_parser(cls: type[C], description: str | None = None) -> argparse.ArgumentParser:
    """One flag per dataclass field, with the field's default, help text and choices."""
    parser = _OneLineErrorParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--config", help="a saved config.json to start from; other flags override it")
    for f in config_fields(cls):
        if f.name == "recipe":
            continue
        ftype = _field_type(cls, f)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        metadata = field_metadata(cls, f.name)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": metadata.get("help", "")}
        kwargs["help"] += f" (default: {_show(default)})"
        if ftype is bool:
            kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="yes|no")
        elif typing.get_origin(ftype) is tuple:
            kwargs.update(type=_int_list, metavar="N,N,...")
        else:
            kwargs["type"] = ftype
        if "choices" in metadata:
            kwargs["choices"] = metadata["choices"]
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)
    parser.formatter_class = argparse.HelpFormatter
    return parser


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return repr(value) if value == "" else str(value)


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UserError(f"{message}", f"see {self.prog} --help")


def parse_config(cls: type[C], argv: list[str] | None = None, description: str | None = None) -> C:
    """Parse ``argv`` into ``cls``: defaults ← ``--config FILE`` ← flags given on the command line."""
    args = vars(build_parser(cls, description).parse_args(argv))
    values: dict[str, Any] = {}
    config_file = args.pop("config", None)
    if config_file:
        values.update(load_config_values(cls, Path(config_file)))
    values.update(args)
    return make_config(cls, values)


def make_config(cls: type[C], values: dict[str, Any]) -> C:
    """Build ``cls`` from a dict, converting JSON lists back to tuples and rejecting unknown keys."""
    known = {f.name: f for f in config_fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"unknown config keys: {', '.join(unknown)}", "remove them or check their spelling")
    converted = {}
    for name, value in values.items():
        if isinstance(value, list):
            value = tuple(value)
        converted[name] = value
    config = cls(**converted)
    validate_choices(config)
    return config


def validate_choices(config: TrainConfig) -> None:
    for f in config_fields(type(config)):
        choices = field_metadata(type(config), f.name).get("choices")
        value = getattr(config, f.name)
        if choices and value not in choices:
            flag = "--" + f.name.replace("_", "-")
            raise UserError(f"unknown {flag} {value!r}", f"choose one of: {', '.join(map(str, choices))}")


def load_config_values(cls: type, path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"config file {path} does not exist", "pass the config.json of an earlier run"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"config file {path} is not valid JSON ({err})", "pass a config.json written by ignite_cv"
        ) from None
    if not isinstance(values, dict):
        raise UserError(
            f"config file {path} does not hold a JSON object", "pass a config.json written by ignite_cv"
        )
    known = {f.name for f in config_fields(cls)}
    return {k: v for k, v in values.items() if k in known}
