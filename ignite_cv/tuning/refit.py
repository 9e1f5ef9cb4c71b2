"""``--refit``: train the best configuration again on train+val and report its test metrics.

The refit is the best trial's config with ``--train-on-val`` (the data layer pools the validation
split into training) and no early stopping (validation now scores training data, so it cannot say
when to stop); it trains the same number of epochs on the same schedule. Its test metrics are the
study's final, unselected score; ``refit.json`` in the study folder records them.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from ignite_cv.tuning.study import StudyPlan
from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import make_options


def refit_config(trial: optuna.trial.FrozenTrial, plan: StudyPlan):
    """The best trial's config, trained on train+val without early stopping, in ``refit-trial-N``."""
    values = {
        **trial.user_attrs["config"],
        "train_on_val": True,
        "patience": 0,
        "output_dir": str(plan.folder),
        "run_name": f"refit-trial-{trial.number:04d}",
        "resume": "",
    }
    return make_options(type(plan.base), values)


def refit_best(study: optuna.Study, plan: StudyPlan, say: Callable[[str], None] = print) -> dict:
    """Run the refit of the study's best complete trial; returns what ``refit.json`` holds."""
    from ignite_cv.training.fit import fit

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise UserError("--refit: the study has no complete trial yet", "run more trials (raise --trials)")
    best = study.best_trial
    config = refit_config(best, plan)
    say(f"refit: trial {best.number}'s config on train+val, {config.epochs} epochs")
    summary = fit(config)
    if summary is None:  # spawned processes: the summary is in the run folder
        import json
        from pathlib import Path

        summary = json.loads((Path(config.output_dir) / config.run_name / "summary.json").read_text())
    record = {
        "trial": best.number,
        "trial_value": best.value,
        "metric": plan.metric,
        "run_dir": summary.get("run_dir"),
        "data": summary.get("data"),
        "test": summary.get("test"),
    }
    write_json_atomic(plan.folder / "refit.json", record, strict=True)
    shown = " ".join(f"{k} {v:.4f}" for k, v in (summary.get("test") or {}).items())
    say(f"refit (train+val) test: {shown}")
    return record
