"""Real run folders for the studies tests: recipes trained in this process on digits (seconds).

Multi-phase runs (ResNet fine-tuning) cost about a minute on two CPU cores even at 8×8 px, so the
phase-dependent cases use synthetic folders in the same formats (``run_factory``); the formats they
imitate are checked against these real runs in ``test_runs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recipe_utils import load_recipe


@pytest.fixture(scope="session")
def real_study(tmp_path_factory) -> Path:
    """A study folder holding two real runs: ``a-tinyvgg`` (2 epochs) and ``b-mlp`` (1 epoch)."""
    root = tmp_path_factory.mktemp("study")
    common = ["--output-dir", str(root), "--workers", "0", "--dataset", "digits"]
    tinyvgg = load_recipe("tinyvgg")
    argv = [*common, "--epochs", "2", "--hidden-units", "4", "--run-name", "a-tinyvgg"]
    tinyvgg.run_recipe(tinyvgg.TinyVGGRecipe, argv=argv)
    mlp = load_recipe("mlp")
    mlp.run_recipe(mlp.MLPRecipe, argv=[*common, "--epochs", "1", "--run-name", "b-mlp"])
    return root
