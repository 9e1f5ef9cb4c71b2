"""Running a study: the combinations become runs in order; finished runs are skipped, a killed one
resumes from its training state, new values add only new runs, nothing finished is touched."""

from __future__ import annotations

import dataclasses
import json

import pytest
from ignite.engine import Events

from ignite_cv.studies.grid import fixed_values, parse_axis, split_flags
from ignite_cv.studies.runner import plan_study, run_study, same_run
from ignite_cv.training.fit import fit
from ignite_cv.training.loop import PhaseHook
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import load_recipe

FLAGS = ["--epochs", "2", "--hidden-sizes", "8", "--workers", "0", "--image-grid-every", "0"]
FLAGS += ["--live-curves", "no", "--log-every", "5"]


def _mlp():
    return {"mlp": load_recipe("mlp").MLPRecipe}


def _plan(study, grid, classes=None, flags=FLAGS):
    classes = classes or _mlp()
    return plan_study(
        study, classes, [parse_axis(g) for g in grid], fixed_values(classes, split_flags(flags))
    )


class _KillAfterFirstEpoch(PhaseHook):
    """Stops the run like a kill after its first epoch (its training state is already on its way)."""

    def attach(self, parts, run):
        def stop(_):
            if parts.timeline.epoch == 1:
                raise KeyboardInterrupt

        run.trainer.add_event_handler(Events.EPOCH_COMPLETED, stop)
        return []


def test_a_plan_is_every_combination_in_order_with_checked_configs(tmp_path):
    classes = {**_mlp(), "tinyvgg": load_recipe("tinyvgg").TinyVGGRecipe}
    plan = _plan(tmp_path / "study", ["init=kaiming,xavier"], classes, [*FLAGS[:2], "--hidden-units", "4"])
    assert [r.name for r in plan.runs] == [
        "mlp_init=kaiming",
        "mlp_init=xavier",
        "tinyvgg_init=kaiming",
        "tinyvgg_init=xavier",
    ]
    assert [(r.action, type(r.config).__name__, r.config.init) for r in plan.runs] == [
        ("train", "MLPRecipe", "kaiming"),
        ("train", "MLPRecipe", "xavier"),
        ("train", "TinyVGGRecipe", "kaiming"),
        ("train", "TinyVGGRecipe", "xavier"),
    ]
    assert plan.runs[2].config.hidden_units == 4 and plan.runs[0].config.epochs == 2
    assert {r.config.output_dir for r in plan.runs} == {str(tmp_path / "study")}
    assert [r.config.run_name for r in plan.runs] == [r.name for r in plan.runs]
    assert not (tmp_path / "study").exists()  # planning writes nothing


def test_killed_study_resumes_the_interrupted_run_and_skips_finished_ones_then_extends(tmp_path):
    study = tmp_path / "study"
    calls = []

    def fit_killing_run_2(config):
        calls.append(config)
        kill = config.init == "xavier" and not config.resume
        return fit(config, hooks=(_KillAfterFirstEpoch(),) if kill else ())

    with pytest.raises(KeyboardInterrupt):
        run_study(_plan(study, ["init=kaiming,xavier"]), fit=fit_killing_run_2, say=lambda _: None)
    first, second = study / "init=kaiming", study / "init=xavier"
    assert (first / "summary.json").is_file() and not (second / "summary.json").exists()
    assert [p.suffix for p in (second / "checkpoints" / "state").iterdir()] == [".safetensors"]
    statuses = {r["run"]: r["status"] for r in json.loads((study / "study.json").read_text())["runs"]}
    assert statuses == {"init=kaiming": "finished", "init=xavier": "unfinished"}
    finished = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}

    plan = _plan(study, ["init=kaiming,xavier"])
    assert [(r.name, r.action) for r in plan.runs] == [("init=kaiming", "skip"), ("init=xavier", "resume")]
    calls.clear()
    data = run_study(plan, fit=fit_killing_run_2, say=lambda _: None)
    assert [(c.init, c.resume) for c in calls] == [("xavier", str(second))]
    rows = [json.loads(line) for line in (second / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["status"] for r in data["runs"]] == ["finished", "finished"]
    assert {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()} == finished

    calls.clear()
    plan = _plan(study, ["init=kaiming,xavier,default"])
    assert [r.action for r in plan.runs] == ["skip", "skip", "train"]
    data = run_study(plan, fit=fit_killing_run_2, say=lambda _: None)
    assert [c.init for c in calls] == ["default"]
    assert data["grid"] == {"init": ["kaiming", "xavier", "default"]}
    csv_lines = (study / "study.csv").read_text().splitlines()
    header = csv_lines[0].split(",")
    assert header[:3] == ["run", "status", "init"] and "test/accuracy" in header and "best_epoch" in header
    assert [line.split(",")[:3] for line in csv_lines[1:]] == [
        ["init=kaiming", "finished", "kaiming"],
        ["init=xavier", "finished", "xavier"],
        ["init=default", "finished", "default"],
    ]
    assert all(
        0 < r["test/accuracy"] <= 1 and r["params_total"] == r["params_trainable"] for r in data["runs"]
    )


def _write_run(folder, config, state=False, summary=False):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    if state:
        (folder / "checkpoints" / "state").mkdir(parents=True)
        (folder / "checkpoints" / "state" / "state_iter=000000010.safetensors").write_bytes(b"x")
    if summary:
        (folder / "summary.json").write_text("{}")


def test_folders_are_matched_by_their_config_not_their_name(tmp_path):
    study = tmp_path / "study"
    planned = _plan(study, ["init=kaiming,xavier,default"]).runs
    _write_run(study / "someone-elses-name", planned[0].config, summary=True)
    _write_run(study / "init=xavier", planned[1].config, state=True)
    _write_run(study / "init=default", planned[2].config)  # killed before its first state
    runs = _plan(study, ["init=kaiming,xavier,default"]).runs
    assert [(r.name, r.action) for r in runs] == [
        ("someone-elses-name", "skip"),
        ("init=xavier", "resume"),
        ("init=default-2", "train"),
    ]
    assert runs[1].config.resume == str(study / "init=xavier")
    assert runs[2].note == "init=default stopped before its first training state"
    other = _plan(study, ["init=kaiming"], flags=[*FLAGS, "--lr", "0.5"]).runs  # other flags: another run
    assert [(r.name, r.action) for r in other] == [("init=kaiming", "train")]


def test_same_run_ignores_bookkeeping_and_reads_missing_fields_as_defaults(tmp_path):
    config = load_recipe("mlp").MLPRecipe(epochs=3)
    stored = config.to_dict()
    assert same_run({**stored, "log_every": 7, "run_name": "x", "output_dir": "elsewhere"}, config)
    assert not same_run({**stored, "lr": 0.5}, config)
    older = {k: v for k, v in stored.items() if k != "train_metrics"}  # a run made before the option
    assert same_run(older, config)
    assert not same_run(older, dataclasses.replace(config, train_metrics="full"))
    found = {**stored, "lr_find": "apply", "lr": 0.0123}  # the LR finder replaced the asked-for LR
    asked = dataclasses.replace(config, lr_find="apply")
    (tmp_path / "lr_find.json").write_text(
        json.dumps({"option": "lr", "configured_lr": config.lr, "applied": True})
    )
    assert same_run(found, asked, tmp_path) and not same_run(found, asked)


def test_a_run_that_fails_is_recorded_and_the_study_goes_on(tmp_path):
    study = tmp_path / "study"
    seen = []

    def failing_fit(config):
        seen.append(config.init)
        if config.init == "kaiming":
            raise UserError("the loss became NaN", "lower --lr")

    data = run_study(_plan(study, ["init=kaiming,xavier"]), fit=failing_fit, say=lambda _: None)
    assert seen == ["kaiming", "xavier"]
    by_run = {r["run"]: r for r in data["runs"]}
    assert by_run["init=kaiming"]["status"] == "failed"
    assert by_run["init=kaiming"]["error"] == "the loss became NaN; lower --lr"
    assert by_run["init=xavier"]["status"] == "pending"  # the fake fit made no folder


def test_a_run_folder_or_a_damaged_study_file_is_refused(tmp_path):
    run = tmp_path / "run"
    _write_run(run, load_recipe("mlp").MLPRecipe())
    with pytest.raises(UserError, match="is a run folder, not a study folder"):
        _plan(run, ["init=kaiming"])
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text("{not json")
    with pytest.raises(UserError, match="study.json is not valid JSON"):
        run_study(_plan(study, ["init=kaiming"]), fit=lambda c: None, say=lambda _: None)
