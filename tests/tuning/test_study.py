"""The search loop on real (tiny) runs: target counts, reruns, pruned runs, killed and surplus trials."""

from __future__ import annotations

import json
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from ignite_cv.tuning.study import SurplusTrial, objective_metric, run_study, run_trial, trial_config
from ignite_cv.utils.errors import UserError
from tests.tuning.conftest import tiny_study


def test_trials_reach_the_target_and_a_rerun_with_a_larger_target_continues(tmp_path):
    study, plan = tiny_study(tmp_path, trials=2)
    said: list[str] = []
    counts = run_study(study, plan, said.append)
    assert counts == {"complete": 2}
    first = [(t.number, t.value, t.params) for t in study.trials]
    for trial in study.trials:
        run_dir = plan.folder / f"trial-{trial.number:04d}"
        config = json.loads((run_dir / "config.json").read_text())
        assert {k: config[k] for k in trial.params} == trial.params
        assert (config["run_name"], config["output_dir"], config["monitor"]) == (
            run_dir.name,
            str(plan.folder),
            "auto",
        )
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["trial"] == {
            "number": trial.number,
            "state": "complete",
            "params": trial.params,
            "metric": "accuracy",
            "value": trial.value,
        }
        assert trial.value == summary["best"]["value"] and trial.user_attrs["config"] == config
        assert sorted(trial.intermediate_values) == [1, 2]
    assert any(line.startswith("trial 1: val accuracy ") for line in said)

    again, plan = tiny_study(tmp_path, trials=3)  # the same study, loaded from its database
    assert run_study(again, plan, said.append) == {"complete": 3}
    assert [(t.number, t.value, t.params) for t in again.trials][:2] == first

    already = len(said)
    assert run_study(again, plan, said.append) == {"complete": 3}  # target reached: nothing runs
    assert len(said) == already


def test_a_pruned_trial_ends_its_run_cleanly(tmp_path):
    study, plan = tiny_study(
        tmp_path, "--pruner-startup-trials", "1", "--pruner-warmup-epochs", "0", trials=2
    )
    perfect = {1: 1.0, 2: 1.0}  # an earlier trial no tiny run can match
    study.add_trial(
        optuna.trial.create_trial(value=1.0, intermediate_values=perfect, params={}, distributions={})
    )
    assert run_study(study, plan, lambda line: None) == {"complete": 1, "pruned": 1}
    pruned = study.trials[1]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [1]
    run_dir = plan.folder / "trial-0001"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trial"]["state"] == "pruned" and summary["trial"]["pruned_at_epoch"] == 1
    assert summary["phases"][0]["stopped_by"] == "pruned" and summary["epochs_run"] == 1
    assert set(summary["test"]) >= {"accuracy", "loss"}  # the run finished: best model on the test split
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1] and rows[0]["val/accuracy"] == pruned.intermediate_values[1]


def test_a_diverging_trial_counts_as_pruned(tmp_path):
    flags = ["--optimizer", "sgd", "--scheduler", "none", "--label-smoothing", "0", "--log-every", "1"]
    study, plan = tiny_study(tmp_path, *flags, trials=1, space=["lr=choice(1e12)"])
    assert run_study(study, plan, lambda line: None) == {"pruned": 1}
    summary = json.loads((plan.folder / "trial-0000" / "summary.json").read_text())
    assert summary["trial"]["state"] == "pruned" and summary["trial"]["params"] == {"lr": 1e12}
    assert summary["trial"]["reason"].startswith("non-finite loss: the loss became NaN/inf at epoch 1")


def test_a_killed_trial_is_failed_and_run_again_with_its_parameters(tmp_path):
    study, plan = tiny_study(tmp_path, trials=1)
    killed = study.ask()  # a worker that started trial 0 and was killed: heartbeat, then silence
    params = {p.name: p.suggest(killed) for p in plan.space}
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(3 * plan.heartbeat_s + 1.5)
    said: list[str] = []
    assert run_study(study, plan, said.append) == {"fail": 1, "complete": 1}
    failed, rerun = study.trials
    assert (failed.number, failed.state, rerun.state) == (0, TrialState.FAIL, TrialState.COMPLETE)
    assert rerun.params == params and rerun.system_attrs["failed_trial"] == 0
    assert (
        f"trial 1 (re-run of killed trial 0): lr={params['lr']:.4g} batch_size={params['batch_size']}" in said
    )
    assert json.loads((plan.folder / "trial-0001" / "config.json").read_text())["run_name"] == "trial-0001"


def test_a_worker_waits_for_trials_running_elsewhere(tmp_path):
    study, plan = tiny_study(tmp_path, trials=1)
    elsewhere = study.ask()
    study._storage.record_heartbeat(elsewhere._trial_id)
    finisher = threading.Timer(1.5, lambda: study.tell(elsewhere, 0.5))
    finisher.start()
    said: list[str] = []
    try:
        assert run_study(study, plan, said.append) == {"complete": 1}
    finally:
        finisher.join()
    assert len(study.trials) == 1 and said[0].startswith("0/1 trials finished, 1 running elsewhere: waiting")


def test_a_surplus_trial_withdraws(tmp_path):
    study, plan = tiny_study(tmp_path, trials=1)
    study.ask()  # another worker's trial 0 got there first
    study.optimize(lambda t: run_trial(study, plan, t, print), n_trials=1, catch=(SurplusTrial,))
    surplus = study.trials[1]
    assert surplus.state == TrialState.FAIL and surplus.params == {}
    assert surplus.user_attrs == {"withdrawn": "the study reached its target count in other workers"}
    assert not (plan.folder / "trial-0001").exists()


def test_objective_metric_and_trial_config(tmp_path):
    _, plan = tiny_study(tmp_path, "--metric", "loss")
    assert (plan.metric, plan.direction, plan.monitor_mode) == ("loss", "minimize", "min")
    config = trial_config(plan, {"lr": 0.005}, "trial-0007")
    assert (config.lr, config.monitor, config.monitor_mode, config.run_name) == (
        0.005,
        "loss",
        "min",
        "trial-0007",
    )
    assert objective_metric(plan.base, "f1_macro", "auto") == ("f1_macro", "maximize")
    assert objective_metric(plan.base, "", "minimize") == ("auto", "minimize")
    with pytest.raises(
        UserError, match="--metric 'precision' is not a validation metric; use one of: loss, "
    ):
        objective_metric(plan.base, "precision", "auto")
