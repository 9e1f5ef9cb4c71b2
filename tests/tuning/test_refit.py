"""--refit: the best trial's config trained on train+val, scored on test."""

from __future__ import annotations

import json

import optuna
import pytest

from ignite_cv.tuning.refit import refit_best, refit_config
from ignite_cv.utils.errors import UserError
from tests.tuning.conftest import tiny_study


def test_refit_trains_the_best_config_on_train_and_val(tmp_path):
    study, plan = tiny_study(tmp_path, "--patience", "1")
    config = {**plan.base.to_dict(), "lr": 0.004, "batch_size": 64, "epochs": 1, "run_name": "trial-0000"}
    best = optuna.trial.create_trial(
        value=0.9,
        params={"lr": 0.004},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)},
        user_attrs={"config": json.loads(json.dumps(config))},
    )
    with pytest.raises(UserError, match="--refit: the study has no complete trial yet"):
        refit_best(study, plan)
    study.add_trial(best)
    made = refit_config(study.best_trial, plan)
    assert (made.train_on_val, made.patience, made.lr, made.run_name) == (True, 0, 0.004, "refit-trial-0000")
    record = refit_best(study, plan, lambda line: None)
    saved = json.loads((plan.folder / "refit.json").read_text())
    assert saved == record and record["trial"] == 0 and record["trial_value"] == 0.9
    assert record["data"]["train"] == 1438 and record["data"]["val"] == 143 and record["data"]["test"] == 359
    summary = json.loads((plan.folder / "refit-trial-0000" / "summary.json").read_text())
    assert summary["test"] == record["test"] and summary["epochs_run"] == 1
