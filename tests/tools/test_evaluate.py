"""tools/evaluate.py: a checkpoint alone reproduces its run's test metrics and report; errors are one line."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.recipe_utils import REPO, load_recipe, load_tool, run_script

TOOL = REPO / "tools" / "evaluate.py"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> dict:
    """A tiny TinyVGG trained on digits in this process; its summary (best checkpoint, test metrics)."""
    out = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("tinyvgg")
    argv = ["--epochs", "2", "--hidden-units", "4", "--output-dir", str(out), "--workers", "0"]
    return recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)


def _tool():
    return load_tool("evaluate")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _one_line_error(stderr: str) -> str:
    err = stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def test_evaluate_reproduces_the_runs_test_metrics_and_report(trained_run, tmp_path):
    best = Path(trained_run["best_checkpoint"])
    checkpoint_bytes = best.read_bytes()
    # The run's batch size: the same batches give bit-identical logits, so no argmax can flip.
    result = run_script([str(TOOL), str(best), "--dataset", "digits", "--batch-size", "128"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    report_dir = Path(trained_run["run_dir"]) / "report-test-digits"  # <checkpoints>/../report-<split>-<data>
    assert f"report folder: {report_dir}" in result.stdout
    saved = json.loads((report_dir / "metrics.json").read_text())
    assert saved["metrics"]["accuracy"] == pytest.approx(trained_run["test"]["accuracy"], abs=1e-6)
    assert saved["confusion_matrix"] == trained_run["test_confusion_matrix"]

    with open(report_dir / "confusion_matrix.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert sum(int(v) for row in rows for v in row[1:]) == trained_run["data"]["test"] == saved["n"]

    printed = float(re.search(r"^\s*roc_auc\s+([0-9.]+)$", result.stdout, re.M).group(1))
    roc = json.loads((report_dir / "roc.json").read_text())
    assert roc["auc"] == pytest.approx(printed, abs=1e-6)
    assert roc["auc"] == pytest.approx(trained_run["test"]["roc_auc"], abs=1e-6)
    assert best.read_bytes() == checkpoint_bytes  # only read

    # A second evaluation goes to a new folder and leaves the first one as it was.
    before = _digest(report_dir)
    argv = [str(best), "--dataset", "digits", "--split", "val", "--output-dir", str(report_dir)]
    again = _tool().main(argv)
    assert again["output_dir"] == f"{report_dir}-2" and again["split"] == "val"
    assert again["n"] == trained_run["data"]["val"]
    assert _digest(report_dir) == before


def test_a_checkpoint_with_other_classes_than_the_data_is_one_line(trained_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "three.npz"
    np.savez(
        data,
        train_images=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8),
        train_labels=np.arange(60) % 3,
    )
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([trained_run["best_checkpoint"], "--dataset", "npz", "--data-root", str(data)])
    assert exit_info.value.code == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "10 classes" in err and "has 3" in err


def test_an_image_size_the_model_cannot_take_is_one_line(trained_run, tmp_path, capsys):
    argv = [trained_run["best_checkpoint"], "--dataset", "digits", "--image-size", "16"]
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([*argv, "--output-dir", str(tmp_path / "report")])
    assert exit_info.value.code == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "trained at 8×8" in err and "16×16" in err and not (tmp_path / "report").exists()


def test_a_pickle_is_refused_without_a_traceback(tmp_path):
    pickled = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2, 2)}, pickled)
    result = run_script([str(TOOL), str(pickled), "--dataset", "digits"], cwd=tmp_path)
    assert result.returncode == 2
    err = _one_line_error(result.stderr)
    assert "not a safetensors file" in err and not (tmp_path / "report-test-digits").exists()


def test_two_processes_give_the_runs_metrics_and_report(trained_run, tmp_path):
    argv = [str(TOOL), trained_run["best_checkpoint"], "--dataset", "digits", "--device", "cpu"]
    argv += ["--batch-size", "128", "--nproc-per-node", "2", "--output-dir", str(tmp_path / "two")]
    result = run_script(argv, cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("report folder:") == 1  # rank 1 stays silent
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["confusion_matrix"] == trained_run["test_confusion_matrix"]
    for name, value in trained_run["test"].items():
        assert two["metrics"][name] == pytest.approx(value, abs=1e-5), name
    # The two shards gathered hold every test image exactly once: the report is the run's own.
    run_report = Path(trained_run["run_dir"]) / "report"
    for name in ("confusion_matrix.csv", "classification_report.json"):
        assert (tmp_path / "two" / name).read_text() == (run_report / name).read_text(), name
