"""The command-line entry of every recipe: parse the config dataclass into flags, then ``fit``."""

from __future__ import annotations

import logging
import warnings

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.utils.errors import exit_on_user_error

#: Ignite loggers whose INFO lines (launcher, auto_* wrappers) are not the user's business.
_CHATTY_LOGGERS = (
    "ignite.distributed.launcher.Parallel",
    "ignite.distributed.auto.auto_model",
    "ignite.distributed.auto.auto_optim",
    "ignite.distributed.auto.auto_dataloader",
)


#: Ignite's engine logs "Engine run is terminating due to exception: ..." before re-raising; the
#: exception itself reaches the command line (one ``error:`` line, or a traceback for a bug), so the
#: log line would only say it twice.
_ECHOING_LOGGERS = ("ignite.engine.engine.Engine",)


def quiet_libraries() -> None:
    """Third-party deprecation chatter and Ignite's launcher info lines are not the user's business;
    our own warnings still show. Recipes and tools call it before they work."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(ignite|kornia|torch)\b")
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in _ECHOING_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@exit_on_user_error
def run_recipe(config_cls: type[TrainConfig], description: str | None = None, argv: list[str] | None = None):
    """Parse ``argv`` (default: ``sys.argv``) into ``config_cls`` and train; returns the run summary."""
    config = parse_config(config_cls, argv, description)
    quiet_libraries()
    from ignite_cv.training.folds import run_study, wants_study

    if wants_study(config):  # --folds K, or --resume of a study folder
        return run_study(config)
    from ignite_cv.training.fit import fit

    return fit(config)
