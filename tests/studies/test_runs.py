"""Reading run and study folders: real runs' files, gaps noted instead of failing, one-line errors."""

from __future__ import annotations

import json

import pytest

from ignite_cv.studies.runs import PhaseSpan, collect_runs, load_run
from ignite_cv.utils.errors import UserError
from tests.studies.run_factory import recipe_config, write_run


def test_real_run_folders_are_read(real_study):
    run = load_run(real_study / "a-tinyvgg")
    assert run.notes == []
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert run.phase_spans() == [PhaseSpan("train", 1, 2)]
    summary = json.loads((real_study / "a-tinyvgg" / "summary.json").read_text())
    assert run.test_metrics["accuracy"] == summary["test"]["accuracy"]
    assert run.test_confusion_matrix == summary["test_confusion_matrix"]
    assert run.class_names == [str(d) for d in range(10)]
    assert run.train_time_s == pytest.approx(sum(p["wall_time_s"] for p in summary["phases"]))
    assert run.trains_everything is True
    assert run.unfrozen_blocks is None  # a plain run has no backbone/head split
    epochs, values = run.series("val/accuracy")
    assert epochs == [1, 2] and values == [r["val/accuracy"] for r in run.history]
    best = max(run.history, key=lambda r: r["val/accuracy"])
    matrix, epoch = run.epoch_confusion_matrix("val")
    assert matrix == best["val/confusion_matrix"] and epoch == best["epoch"]
    assert sum(map(sum, matrix)) == summary["data"]["val"]
    assert run.epoch_confusion_matrix("train") is None  # training matrices are not stored


def test_factory_writes_what_real_runs_hold(real_study, tmp_path):
    """The synthetic folders other tests use have the real files' keys."""
    real = load_run(real_study / "a-tinyvgg")
    digits = [str(d) for d in range(10)]
    fake = load_run(write_run(tmp_path / "fake", recipe_config("tinyvgg"), classes=digits))
    assert set(fake.config) == set(real.config)
    assert set(fake.history[0]) == set(real.history[0])
    assert set(fake.summary) == set(real.summary)
    assert set(fake.phases[0]) == set(real.phases[0])
    assert set(fake.test_metrics) == set(real.test_metrics)
    assert fake.class_names == real.class_names


def test_fine_tuning_phases_and_unfrozen_blocks(tmp_path):
    config = recipe_config(mode="finetune", unfreeze="1", epochs=5, warmup_epochs=2)
    run = load_run(
        write_run(
            tmp_path / "ft",
            config,
            phases=[("warmup", 2), ("finetune", 3)],
            unfrozen_blocks=[0, 1],
            params=(1000, 300),
        )
    )
    assert run.phase_spans() == [PhaseSpan("warmup", 1, 2), PhaseSpan("finetune", 3, 5)]
    assert run.unfrozen_blocks == 1
    assert run.trains_everything is False
    assert run.train_time_s == pytest.approx(sum(p["wall_time_s"] for p in run.phases))


def test_unfinished_and_damaged_runs_are_noted(tmp_path):
    folder = write_run(tmp_path / "unfinished", recipe_config(), finished=False)
    with (folder / "metrics.jsonl").open("a") as handle:
        handle.write('{"epoch": 4, "phase": "tra')  # a line cut short by a kill
    run = load_run(folder)
    assert run.summary is None and run.test_metrics == {} and run.train_time_s is None
    assert len(run.history) == 3
    assert len(run.notes) == 2
    assert "1 unreadable line(s) in metrics.jsonl skipped" in run.notes
    assert any(note.startswith("no summary.json") for note in run.notes)

    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text(json.dumps({"model": "mlp"}))
    bare = load_run(tmp_path / "bare")
    assert bare.history == [] and bare.class_names is None
    assert any(note.startswith("no metrics.jsonl") for note in bare.notes)


def test_study_folders_expand_once_each(real_study):
    runs = collect_runs([real_study, real_study / "b-mlp"])
    assert [r.name for r in runs] == ["a-tinyvgg", "b-mlp"]  # sorted; b-mlp not twice


@pytest.mark.parametrize("case", ["missing", "empty", "file", "bad-json", "list-json"])
def test_not_a_run_is_a_one_line_error(tmp_path, case):
    target = tmp_path / "target"
    if case == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    elif case == "file":
        target.write_text("{}")
    elif case in ("bad-json", "list-json"):
        target.mkdir()
        (target / "config.json").write_text("{oops" if case == "bad-json" else "[1, 2]")
    with pytest.raises(UserError) as err:
        collect_runs([target])
    message = str(err.value)
    assert "\n" not in message
    assert str(target) in message
    expected = {
        "missing": "does not exist",
        "empty": "is neither a run folder (no config.json) nor a study folder",
        "file": "is a file, not a folder",
        "bad-json": "is not valid JSON (line 1",
        "list-json": "is not a JSON object",
    }[case]
    assert expected in message
    assert "pass a run folder" in message  # the fix


def test_stored_epoch_confusion_matrices_at_the_best_epoch(tmp_path):
    folder = write_run(
        tmp_path / "r", recipe_config(), phases=[("train", 3)], classes=("a", "b"), val_confusion=True
    )
    summary = json.loads((folder / "summary.json").read_text())
    summary["best"]["epoch"] = 2
    (folder / "summary.json").write_text(json.dumps(summary))
    run = load_run(folder)
    assert run.epoch_confusion_matrix("val") == (
        [[12, 0], [0, 12]],
        2,
    )  # the factory writes eye × (10 + epoch)
    assert run.epoch_confusion_matrix("train") is None
