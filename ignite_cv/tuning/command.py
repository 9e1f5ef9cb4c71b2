"""``tools/tune.py RECIPE ...``: the tuner's command line, from flags to a finished study.

The flags are the tuner's own (:class:`~ignite_cv.tuning.options.TuneOptions`), ``--space SPEC...``
and every flag of the recipe, which fixes that field for all trials (``--config FILE`` gives a saved
config as the base). Everything the user can get wrong is checked before a folder or a database is
created. Optuna is imported only after :func:`require_optuna` says it is installed.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ignite_cv.tuning.options import TUNER_FIELDS, TuneOptions
from ignite_cv.tuning.space import SearchParam, parse_space
from ignite_cv.utils.distributed import under_torchrun
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import build_parser, flag, load_config_values, make_options, option_fields

INSTALL_HINT = "pip install -e '.[tune]' (or: pip install optuna optuna-integration)"
#: Recipe fields the tuner owns; giving one as a flag is refused (``--monitor`` is the default --metric).
REFUSED_FLAGS = {
    "run_name": "each trial's run folder is <study folder>/trial-NNNN",
    "resume": "rerun the same tools/tune.py command to continue a study",
}


@dataclasses.dataclass
class TuneCommand:
    base: Any  #: the recipe config with the fixed flags
    options: TuneOptions
    space: list[SearchParam]


def require_optuna() -> None:
    """A UserError with the install command when Optuna or its Ignite integration is missing."""
    missing = []
    for name in ("optuna", "optuna_integration"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"tools/tune.py needs {' and '.join(missing)}", f"install it: {INSTALL_HINT}")


def tune_parser(config_cls: type | None, description: str | None, prog: str):
    """The parser of the tuner's flags, ``--space`` and (given a recipe) the recipe's flags."""
    cls = TuneOptions if config_cls is None else _combined(config_cls)
    parser = build_parser(cls, description, prog)
    parser.add_argument(
        "--space",
        nargs="+",
        action="extend",
        default=[],
        metavar="SPEC",
        help="searched fields: NAME=log(LOW,HIGH), NAME=uniform(LOW,HIGH[,STEP]), NAME=choice(A,B,...); "
        "an int field draws ints",
    )
    return parser


def _combined(config_cls: type) -> type:
    tune_names = {f.name for f in option_fields(TuneOptions)}
    clash = sorted(tune_names & {f.name for f in option_fields(config_cls)})
    if clash:
        raise UserError(
            f"the recipe's options {', '.join(map(flag, clash))} clash with the tuner's",
            "rename them in the recipe",
        )
    return dataclasses.make_dataclass(f"Tune{config_cls.__name__}", [], bases=(TuneOptions, config_cls))


def parse_tune_command(config_cls: type, argv: list[str], description: str | None, prog: str) -> TuneCommand:
    """Split ``argv`` into the base config (defaults ← ``--config`` ← fixed flags), the tuner's
    options and the checked search space."""
    parser = tune_parser(config_cls, description, prog)
    args = vars(parser.parse_args(argv))
    specs = args.pop("space")
    config_file = args.pop("config", None)
    tune_names = {f.name for f in option_fields(TuneOptions)}
    tune_values = {k: v for k, v in args.items() if k in tune_names}
    fixed = {k: v for k, v in args.items() if k not in tune_names}
    for name, why in REFUSED_FLAGS.items():
        if name in fixed:
            raise UserError(f"{flag(name)} cannot be given to tools/tune.py", why)
    values = load_config_values(config_cls, Path(config_file)) if config_file else {}
    values.update(fixed)
    base = make_options(config_cls, values)
    options = make_options(TuneOptions, tune_values)
    if not specs:
        raise UserError("no --space given: nothing to search", "pass e.g. --space 'lr=log(1e-5,1e-1)'")
    space = parse_space(specs, config_cls, reserved=TUNER_FIELDS, fixed=fixed)
    return TuneCommand(base, options, space)


def run_tuning(config_cls: type, argv: list[str], description: str | None, prog: str, say: Callable = print):
    """Parse, open the study, run trials up to the target, write the results (and refit)."""
    if under_torchrun():
        raise UserError(
            "tools/tune.py starts its trials itself and does not run under torchrun",
            "to train each trial on K processes pass --nproc-per-node K; for more machines start one "
            "tools/tune.py per machine with the same --storage and --study-name",
        )
    require_optuna()
    command = parse_tune_command(config_cls, argv, description, prog)
    from ignite_cv.tuning.refit import refit_best
    from ignite_cv.tuning.results import write_results
    from ignite_cv.tuning.storage import shown_url
    from ignite_cv.tuning.study import finished_count, run_study, trial_counts

    if command.options.threads:
        import torch

        torch.set_num_threads(command.options.threads)
    study, plan = prepare_study(command)
    counts = trial_counts(study)
    say(
        f"study {plan.study_name!r} in {shown_url(plan.storage_url)}: "
        f"{finished_count(counts)} of {plan.target} trials finished; "
        f"{plan.direction} val {plan.metric}; pruner {plan.pruner.name}; space: "
        + " ".join(p.describe() for p in plan.space)
    )
    counts = run_study(study, plan, say)
    info = write_results(study, plan, say)
    say(
        f"study {plan.study_name!r}: "
        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        + f"; results in {plan.folder}"
    )
    if info["best"] is not None:
        best = info["best"]
        say(f"best: trial {best['number']} val {info['metric']} {best['value']:.4f} with {best['params']}")
        say(f"rerun it: python recipes/{plan.base.recipe}.py --config {best['config']}")
    if command.options.refit:
        info["refit"] = refit_best(study, plan, say)
    return info


def prepare_study(command: TuneCommand):
    """``(study, plan)``: the study folder and the study in its storage, created or loaded. A storage
    that cannot be opened leaves no new folder behind."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    from ignite_cv.tuning.pruning import PrunerSpec
    from ignite_cv.tuning.storage import default_storage_url, open_storage, open_study
    from ignite_cv.tuning.study import StudyPlan, objective_metric

    base, options = command.base, command.options
    metric, direction = objective_metric(base, options.metric, options.direction)
    study_name = options.study_name or f"{base.recipe}-tune"
    if "/" in study_name or study_name in (".", ".."):
        raise UserError(
            f"--study-name {study_name!r} is not a folder name", "use letters, digits, '-' and '_'"
        )
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial instead
    folder = Path(base.output_dir) / study_name
    url = options.storage or default_storage_url(folder)
    searched = {p.name for p in command.space}
    pruner = PrunerSpec(
        options.pruner,
        options.pruner_startup_trials,
        options.pruner_warmup_epochs,
        None if "epochs" in searched else base.epochs,
    )
    created = not folder.exists()
    try:
        if not options.storage:
            folder.mkdir(parents=True, exist_ok=True)  # the SQLite file lives in it
        storage = open_storage(url, options.heartbeat, options.grace_period)
        study = open_study(storage, study_name, direction, metric, None, pruner.build())
    except (UserError, OSError) as err:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # nothing was written: leave no empty study folder behind
        if isinstance(err, OSError):
            raise UserError(
                f"cannot create the study folder {folder} ({err.strerror})", "pass a writable --output-dir"
            ) from None
        raise
    folder.mkdir(parents=True, exist_ok=True)
    study.sampler = sampler_for(study, options.sampler_seed)
    plan = StudyPlan(
        base=base,
        space=tuple(command.space),
        folder=folder,
        study_name=study_name,
        storage_url=url,
        metric=metric,
        direction=direction,
        target=options.trials,
        heartbeat_s=options.heartbeat,
        pruner=pruner,
    )
    return study, plan


def sampler_for(study, seed: int):
    """TPE, seeded with ``seed`` plus the trials the study already holds: a rerun of a seeded command
    continues the sequence instead of drawing its first trials again (a fresh seeded study repeats)."""
    import optuna

    return optuna.samplers.TPESampler(seed=None if seed < 0 else seed + len(study.trials))
