"""End to end on real data (``../shared/data``; skipped with the reason when it is absent): the recipes
train for real, and what they report holds up against the files they wrote."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import shared_path
from tests.recipe_utils import load_recipe

pytestmark = pytest.mark.slow


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_mlp_recipe_defaults_reach_the_fashion_mnist_target(tmp_path):
    """The MLP recipe as a user runs it (10 epochs, its defaults): test accuracy >= 0.88 (issue 2)."""
    root = shared_path("fashion-mnist")
    recipe = load_recipe("mlp")
    summary = recipe.run_recipe(
        recipe.MLPRecipe,
        argv=["--dataset", "fashion-mnist", "--data-root", str(root), "--output-dir", str(tmp_path)],
    )
    assert summary["data"] == {"train": 54_000, "val": 6_000, "test": 10_000, "skipped": 0}
    assert summary["epochs_run"] == 10
    assert summary["test"]["accuracy"] >= 0.88
    run_dir = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, 11))
    best = max(rows, key=lambda row: row["val/accuracy"])
    assert summary["best"]["epoch"] == best["epoch"]
    assert summary["best"]["value"] == pytest.approx(best["val/accuracy"], abs=1e-9)


def test_tinyvgg_on_pneumoniamnist_is_a_binary_task_monitored_by_roc_auc(tmp_path):
    """A binary medical set: one logit, ROC-AUC monitored and reported, the report consistent with it."""
    path = shared_path("medmnist", "pneumoniamnist.npz")
    recipe = load_recipe("tinyvgg")
    summary = recipe.run_recipe(
        recipe.TinyVGGRecipe,
        argv=[
            *("--dataset", "npz", "--data-root", str(path), "--output-dir", str(tmp_path)),
            *("--epochs", "3", "--hidden-units", "8", "--run-name", "pneumonia"),
        ],
    )
    assert summary["best"]["metric"] == "roc_auc"
    assert summary["data"]["test"] == 624
    assert summary["test"]["roc_auc"] >= 0.9
    report = Path(summary["run_dir"]) / "report"
    roc = _read_json(next(report.glob("*roc*.json")))
    assert roc["auc"] == pytest.approx(summary["test"]["roc_auc"], abs=1e-9)
    with open(next(report.glob("*confusion*.csv"))) as handle:
        cells = [int(v) for row in list(csv.reader(handle))[1:] for v in row[1:]]
    assert sum(cells) == 624
