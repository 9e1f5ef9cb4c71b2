"""A cross-validation study in one process: fold folders, out-of-fold coverage, ensemble, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ignite_cv.data.sources import load_data
from ignite_cv.roc import roc_auc
from ignite_cv.training.folds import FOLD_RESULT, is_study, wants_study
from tests.recipe_utils import load_recipe

FOLDS = 2
ARGS = [
    "--epochs",
    "1",
    "--hidden-units",
    "4",
    "--batch-size",
    "64",
    "--workers",
    "0",
    "--image-grid-every",
    "0",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("cv")
    recipe = load_recipe("tinyvgg")
    argv = [*ARGS, "--folds", str(FOLDS), "--output-dir", str(out), "--run-name", "cv"]
    summary = recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)
    return summary, out / "cv"


def test_each_fold_is_a_full_run_in_the_study_folder(study):
    summary, folder = study
    assert is_study(folder)
    folds = json.loads((folder / "folds.json").read_text())
    pool, test = folds["pool"], folds["test"]
    assert (pool, test) == (1438, 359)  # digits: 1797 = 359 held-out test + 1438 train+val
    for i in range(FOLDS):
        run = folder / f"fold-{i}"
        config = json.loads((run / "config.json").read_text())
        assert (config["folds"], config["output_dir"], config["run_name"]) == (0, str(folder), f"fold-{i}")
        run_summary = json.loads((run / "summary.json").read_text())
        assert run_summary["data"]["train"] + run_summary["data"]["val"] == pool
        assert run_summary["data"]["test"] == test
        assert (run / "report" / "report.json").is_file()
        result = json.loads((run / FOLD_RESULT).read_text())
        assert result["test"] == run_summary["test"]  # the fold's best model, evaluated once more
        assert result["val"][run_summary["best"]["metric"]] == pytest.approx(run_summary["best"]["value"])
        assert len(result["val_indices"]) == run_summary["data"]["val"]


def test_out_of_fold_predictions_cover_the_pool_exactly_once(study):
    summary, folder = study
    assignment = json.loads((folder / "folds.json").read_text())["assignment"]
    held = [json.loads((folder / f"fold-{i}" / FOLD_RESULT).read_text())["val_indices"] for i in range(FOLDS)]
    assert sorted(i for fold in held for i in fold) == list(range(summary["data"]["pool"]))
    for i, indices in enumerate(held):
        assert all(assignment[j] == i for j in indices)
    oof = json.loads((folder / "out_of_fold_report" / "report.json").read_text())
    assert oof["n"] == summary["data"]["pool"] == sum(map(sum, summary["out_of_fold"]["confusion_matrix"]))
    assert summary["out_of_fold"]["metrics"]["roc_auc"] == pytest.approx(oof["roc_auc"], abs=1e-12)


def test_the_ensemble_is_the_mean_of_the_folds_test_probabilities(study):
    summary, folder = study
    results = [json.loads((folder / f"fold-{i}" / FOLD_RESULT).read_text()) for i in range(FOLDS)]
    mean = np.mean([np.array(r["test_probabilities"]) for r in results], axis=0)
    recipe = load_recipe("tinyvgg")
    labels = load_data(recipe.TinyVGGRecipe(), 0).test.labels.numpy()  # the test split: seed-independent
    ensemble = summary["ensemble_test"]["metrics"]
    assert ensemble["accuracy"] == pytest.approx(float(np.mean(mean.argmax(axis=1) == labels)), abs=1e-12)
    assert ensemble["roc_auc"] == pytest.approx(roc_auc(labels, mean), abs=1e-6)
    report = json.loads((folder / "ensemble_report" / "report.json").read_text())
    assert report["n"] == 359 and report["accuracy"] == pytest.approx(ensemble["accuracy"], abs=1e-12)
    manifest = json.loads((folder / "ensemble.json").read_text())
    assert [m["checkpoint"] for m in manifest["members"]] == [r["best_checkpoint"] for r in results]


def test_summary_statistics_come_from_the_folds(study):
    summary, folder = study
    saved = json.loads((folder / "cv_summary.json").read_text())
    assert saved["per_fold"] == json.loads(json.dumps(summary["per_fold"]))
    values = [f["test"]["accuracy"] for f in summary["per_fold"]]
    stats = summary["aggregate"]["test"]["accuracy"]
    assert stats["values"] == values and stats["mean"] == pytest.approx(np.mean(values))
    assert stats["std"] == pytest.approx(np.std(values, ddof=1))
    lines = (folder / "cv_summary.csv").read_text().splitlines()
    assert lines[0].startswith("row,split,loss,accuracy") and len(lines) == 1 + 2 * FOLDS + 8 + 2


def test_resume_of_a_study_folder_is_a_study(study):
    _, folder = study
    recipe = load_recipe("tinyvgg")
    config = recipe.TinyVGGRecipe(resume=str(folder))
    assert wants_study(config) and not wants_study(recipe.TinyVGGRecipe())


def _npz(path: Path, parts: dict[str, list[int]]) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for part, labels in parts.items():
        arrays[f"{part}_images"] = rng.integers(0, 256, (len(labels), 8, 8), dtype=np.uint8)
        arrays[f"{part}_labels"] = np.array(labels, dtype=np.int64)
    np.savez(path, **arrays)
    return path


def _error(capsys, argv) -> str:
    recipe = load_recipe("tinyvgg")
    with pytest.raises(SystemExit) as exit_info:
        recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_fold_requests_are_one_line_errors_and_leave_no_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    common = [*ARGS, "--output-dir", str(out)]
    assert "--folds 1 is a single run" in _error(capsys, [*common, "--folds", "1"])
    small = _npz(tmp_path / "small.npz", {"train": [0] * 12 + [1] * 3, "val": [0, 1], "test": [0, 1, 0, 1]})
    err = _error(capsys, [*common, "--dataset", "npz", "--data-root", str(small), "--folds", "5"])
    assert "--folds 5 is more than the 4 samples of class '1'" in err and "--folds 4 or fewer" in err
    only_test = _npz(tmp_path / "test_only.npz", {"test": [0, 1, 0, 1]})
    err = _error(capsys, [*common, "--dataset", "npz", "--data-root", str(only_test), "--folds", "3"])
    assert "has no train_images/train_labels" in err
    assert "--prune-after" in _error(capsys, [*common, "--folds", "3", "--prune-after", "0.5"])
    assert "not a cross-validation study" in _error(
        capsys, [*common, "--folds", "3", "--resume", str(tmp_path)]
    )
    assert not out.exists() or [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_rank_zeros_plan_for_each_fold_folder(tmp_path):
    import torch

    from ignite_cv.training.folds import _plan_fold
    from ignite_cv.training_state import TrainingState, snapshot_state, write_state

    def folder(name, *files):
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text("{}")
        return tmp_path / name

    folder("fold-0", "summary.json", FOLD_RESULT)
    folder("fold-1", "summary.json")
    states = folder("fold-2", "config.json") / "checkpoints" / "state"
    write_state(states, 12, snapshot_state(TrainingState({"w": torch.zeros(2)}, {"phase": 0})), keep=1)
    folder("fold-3", "config.json")
    damaged = folder("fold-4", "config.json") / "checkpoints" / "state"
    damaged.mkdir(parents=True)
    (damaged / "state_iter=5.safetensors").write_bytes(b"cut short")
    folder("fold-5", FOLD_RESULT)
    folder("fold-5-2", "config.json")
    folder("fold-5-10", FOLD_RESULT)
    plans = [_plan_fold(tmp_path, i) for i in range(7)]
    assert plans == [
        {"action": "done", "dir": "fold-0"},
        {"action": "evaluate", "dir": "fold-1"},
        {"action": "resume", "dir": "fold-2"},
        {"action": "new", "dir": None},  # stopped before its first state: starts in fold-3-2
        {"action": "new", "dir": None},  # no valid state
        {"action": "done", "dir": "fold-5-10"},  # the newest folder of the fold
        {"action": "new", "dir": None},
    ]


def test_prediction_files_list_every_sample_once(study):
    import csv

    summary, folder = study
    with open(folder / "out_of_fold_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["index"]) for r in rows] == list(range(summary["data"]["pool"]))
    assignment = json.loads((folder / "folds.json").read_text())["assignment"]
    assert [int(r["fold"]) for r in rows] == assignment
    assert list(rows[0])[-10:] == [f"p_{c}" for c in range(10)]
    with open(folder / "ensemble_test_predictions.csv", newline="") as handle:
        test_rows = list(csv.DictReader(handle))
    assert len(test_rows) == 359 and "fold" not in test_rows[0]
