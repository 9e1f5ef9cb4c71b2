"""compare_runs: the file set, the table in CSV and markdown, notes, and nothing written on bad input."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from ignite_cv.studies.compare import NO_EPOCH_CONFUSION, compare_runs, default_output_dir
from ignite_cv.utils.errors import UserError
from tests.studies.run_factory import recipe_config, write_run

FIGURES = {
    "learning_curves.png",
    "training_time.png",
    "accuracy_by_weights.png",
    "accuracy_by_unfrozen.png",
    "metrics_table.png",
    "confusion_matrices_test.png",
}


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_compare_real_runs_with_synthetic_ones(real_study, tmp_path):
    """Real TinyVGG and MLP runs, a two-phase binary run with a stored validation confusion matrix,
    and an unfinished run: every file, one row per run, the notes."""
    binary = write_run(
        tmp_path / "extra" / "binary",
        recipe_config(model="resnet18", weights="none"),
        phases=[("warmup", 1), ("finetune", 2)],
        unfrozen_blocks=[0, 1],
        params=(1000, 400),
        val_confusion=True,
    )
    unfinished = write_run(tmp_path / "extra" / "killed", recipe_config(model="resnet18"), finished=False)
    out = tmp_path / "out"
    result = compare_runs([real_study, binary, unfinished], out)

    names = {p.name for p in out.iterdir()}
    assert names == FIGURES | {"metrics.csv", "metrics.md", "confusion_matrices_val.png"}
    assert sorted(p.name for p in result.files) == sorted(names)
    assert [r.name for r in result.runs] == ["a-tinyvgg", "b-mlp", "binary", "killed"]
    for name in FIGURES:
        width, height = _png_size(out / name)
        assert 300 <= width <= 2500 and 200 <= height <= 2000, (name, width, height)
    assert _png_size(out / "learning_curves.png")[0] > 1000  # three panels across

    with (out / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == ["a-tinyvgg", "b-mlp", "binary", "killed"]
    assert float(rows[0]["test/accuracy"]) == result.runs[0].test_metrics["accuracy"]
    assert rows[3]["test/accuracy"] == "" and rows[3]["train_time_s"] == ""
    assert rows[2]["time_s/warmup"] != "" and rows[0]["time_s/warmup"] == ""

    markdown = (out / "metrics.md").read_text()
    assert markdown.startswith("# Comparison of 4 run(s)\n")
    assert f"- {result.labels[2]}: `{binary}`" in markdown
    assert any(note.startswith("killed: no summary.json") for note in result.notes)
    notes = [n for n in result.notes if n.startswith("confusion matrices:")]
    assert notes == [NO_EPOCH_CONFUSION.format(split="training", key="train/confusion_matrix")]


def test_without_stored_validation_matrices_the_note_says_so(tmp_path):
    runs = [
        write_run(tmp_path / "runs" / name, recipe_config(name), val_confusion=False)
        for name in ("tinyvgg", "mlp")
    ]
    result = compare_runs(runs, tmp_path / "out")
    assert [n for n in result.notes if n.startswith("confusion matrices:")] == [
        NO_EPOCH_CONFUSION.format(split="training", key="train/confusion_matrix"),
        NO_EPOCH_CONFUSION.format(split="validation", key="val/confusion_matrix"),
    ]
    assert not (tmp_path / "out" / "confusion_matrices_val.png").exists()


def test_real_runs_store_validation_matrices(real_study, tmp_path):
    result = compare_runs([real_study], tmp_path / "out")
    assert [n for n in result.notes if n.startswith("confusion matrices:")] == [
        NO_EPOCH_CONFUSION.format(split="training", key="train/confusion_matrix")
    ]
    assert (tmp_path / "out" / "confusion_matrices_val.png").exists()
    assert result.fields[0] == "model"  # tinyvgg vs mlp
    assert result.labels == ["tinyvgg", "mlp"]


def test_default_output_dir(real_study):
    assert default_output_dir([real_study]) == real_study / "compare"
    assert str(default_output_dir([real_study / "a-tinyvgg"])) == "compare"
    assert str(default_output_dir([real_study / "a-tinyvgg", real_study / "b-mlp"])) == "compare"


def test_not_a_run_writes_nothing(real_study, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    with pytest.raises(UserError, match="is neither a run folder"):
        compare_runs([real_study, tmp_path / "empty"], out)
    assert not out.exists()
