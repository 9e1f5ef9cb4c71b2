"""A finished study: trials.csv, study.json, figures, and a best_config.json that reruns the best trial."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ignite_cv.tuning.results import write_results
from ignite_cv.tuning.study import run_study
from tests.recipe_utils import load_recipe
from tests.tuning.conftest import tiny_study


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny study of two complete trials and its written results."""
    study, plan = tiny_study(tmp_path_factory.mktemp("study"), "--pruner", "none", trials=2)
    run_study(study, plan, lambda line: None)
    said: list[str] = []
    info = write_results(study, plan, said.append)
    return study, plan, info, said


def test_trials_csv_has_a_row_per_trial(finished):
    study, plan, _, _ = finished
    with open(plan.folder / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["number"]) for r in rows] == [0, 1] and {r["state"] for r in rows} == {"complete"}
    for row, trial in zip(rows, study.trials):
        assert float(row["value"]) == trial.value and float(row["lr"]) == trial.params["lr"]
        assert int(row["batch_size"]) == trial.params["batch_size"]
        assert (row["epochs_run"], row["last_reported_epoch"], row["retry_of"]) == ("2", "2", "")
        assert row["run_dir"] == str(plan.folder / f"trial-{trial.number:04d}")


def test_study_json_and_figures(finished):
    study, plan, info, said = finished
    saved = json.loads((plan.folder / "study.json").read_text())
    assert saved == json.loads(json.dumps(info))
    assert (saved["metric"], saved["direction"], saved["finished"], saved["counts"]) == (
        "accuracy",
        "maximize",
        2,
        {"complete": 2},
    )
    assert saved["best"]["number"] == study.best_trial.number and saved["best"]["value"] == study.best_value
    assert sorted(saved["figures"]) == [
        "intermediate_values",
        "optimization_history",
        "parallel_coordinate",
        "slice",
    ]
    for path in saved["figures"].values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert said == ["figure param_importances skipped: it needs 3 complete trials, the study has 2"]


def test_best_config_reruns_the_best_trial(finished, tmp_path):
    study, plan, _, _ = finished
    best = study.best_trial
    config = json.loads((plan.folder / "best_config.json").read_text())
    assert (config["run_name"], config["output_dir"]) == ("", plan.base.output_dir)
    assert {k: config[k] for k in best.params} == best.params
    recipe = load_recipe("tinyvgg")
    argv = ["--config", str(plan.folder / "best_config.json"), "--output-dir", str(tmp_path)]
    summary = recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)
    assert (
        summary["best"]["value"] == best.value and summary["best"]["epoch"] == best.user_attrs["best_epoch"]
    )
    rerun = json.loads((tmp_path / summary["run_dir"].split("/")[-1] / "config.json").read_text())
    trial_config = best.user_attrs["config"]
    assert {k: v for k, v in rerun.items() if k not in ("output_dir", "run_name")} == {
        k: v for k, v in trial_config.items() if k not in ("output_dir", "run_name")
    }
