"""The command-line entry of every recipe: parse the config dataclass into flags, then ``fit``."""

from __future__ import annotations

import logging
import warnings

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.utils.errors import exit_on_user_error


@exit_on_user_error
def run_recipe(config_cls: type[TrainConfig], description: str | None = None, argv: list[str] | None = None):
    """Parse ``argv`` (default: ``sys.argv``) into ``config_cls`` and train; returns the run summary."""
    config = parse_config(config_cls, argv, description)
    # Third-party deprecation chatter is not the user's business; our own warnings still show.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(ignite|kornia|torch)\b")
    for name in (
        "ignite.distributed.launcher.Parallel",
        "ignite.distributed.auto.auto_model",
        "ignite.distributed.auto.auto_optim",
        "ignite.distributed.auto.auto_dataloader",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    from ignite_cv.training import fit

    return fit(config)
