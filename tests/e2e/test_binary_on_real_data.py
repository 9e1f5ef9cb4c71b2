"""Defaults that train on a small binary set (PneumoniaMNIST from ``../shared/data``; skipped when absent):
a 500-image subset of its training split learns with no flag beyond the data, and a deliberately bad
learning rate is called out as a collapse onto one class."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_path
from tests.recipe_utils import load_recipe

pytestmark = pytest.mark.slow

SUBSET = 500


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """500 training images drawn (seed 0) from PneumoniaMNIST's training split; val and test as they are."""
    source = np.load(shared_path("medmnist", "pneumoniamnist.npz"))
    keep = np.random.default_rng(0).choice(len(source["train_labels"]), SUBSET, replace=False)
    path = tmp_path_factory.mktemp("pneumonia") / "pneumonia500.npz"
    arrays = {key: source[key] for key in source.files}
    arrays["train_images"], arrays["train_labels"] = (
        arrays["train_images"][keep],
        arrays["train_labels"][keep],
    )
    np.savez(path, **arrays)
    return path


def _run(subset, tmp_path, *flags):
    recipe = load_recipe("resnet_finetune")
    argv = ["--dataset", "npz", "--data-root", str(subset), "--weights", "none", "--mode", "scratch"]
    argv += ["--image-size", "28", "--output-dir", str(tmp_path), *flags]
    return recipe.run_recipe(recipe.ResNetFinetuneRecipe, argv=argv)


def test_500_images_with_the_defaults_learn_without_collapsing(subset, tmp_path, capsys):
    """The defaults' settings on 500 images, 8 epochs instead of their 20 to keep the suite short (the
    full 20 reach ROC-AUC 0.91 on test, see the issue's note)."""
    summary = _run(subset, tmp_path, "--epochs", "8")
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("defaults for training from scratch")
    assert summary["data"]["train"] == SUBSET and summary["epochs_run"] == 8
    assert summary["test"]["roc_auc"] >= 0.8
    assert "collapsed onto one class" not in out


def test_a_bad_learning_rate_is_called_a_collapse(subset, tmp_path, capsys):
    _run(subset, tmp_path, "--lr", "1", "--epochs", "5")
    warnings = [line for line in capsys.readouterr().out.splitlines() if "collapsed onto one class" in line]
    assert len(warnings) == 1
    assert "--lr" in warnings[0] and "--class-weights balanced" in warnings[0]
