"""Tiny studies of TinyVGG on digits (4 hidden units, 2 epochs: a trial takes seconds)."""

from __future__ import annotations

from pathlib import Path

from ignite_cv.recipe_loader import load_recipe_class
from ignite_cv.tuning.command import parse_tune_command, prepare_study

TINY_RUN = ["--epochs", "2", "--hidden-units", "4", "--workers", "0", "--log-every", "5"]
TINY_RUN += ["--image-grid-every", "0", "--deterministic", "--heartbeat", "1"]
SPACE = ("lr=log(1e-3,1e-2)", "batch_size=choice(64,128)")


def tiny_study(output_dir: Path, *flags: str, trials: int = 2, space=SPACE):
    """``(study, plan)`` of a tiny TinyVGG study in ``output_dir`` (no trial run yet)."""
    argv = [*TINY_RUN, "--space", *space, "--output-dir", str(output_dir), "--trials", str(trials), *flags]
    return prepare_study(
        parse_tune_command(load_recipe_class("tinyvgg"), argv, None, "tools/tune.py tinyvgg")
    )
