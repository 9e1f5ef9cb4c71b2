"""The search: trials of a config up to the study's target count, each one a full ignite_cv run.

A trial draws its fields from the search space, becomes a config (the fixed flags, the drawn values,
its run folder ``<study folder>/trial-NNNN``, the tuned metric as its ``--monitor``) and runs
:func:`ignite_cv.training.fit.fit` with the pruning hook. Its value is the run's best validation value
of the metric (the epoch whose weights the run keeps); a pruned trial ends its run normally and is told
``PRUNED``; a run whose loss went non-finite counts as pruned too (the sampler learns from it, and an
all-diverging space cannot loop forever). A user's mistake stops the search (one line, exit 2).

``--trials N`` is the study's target of *finished* trials (complete + pruned), whoever ran them:
before each trial a worker fails trials whose worker died (stale heartbeat; they are queued again with
the same parameters), and starts one only if finished + running trials are below N; when the rest are
running elsewhere it waits for them (a killed one comes back as a queued retry after the grace
period). Two workers that start the last trial at the same instant both pass that check; the one
whose trial number is beyond the first N live trials withdraws (its trial is marked failed with
``withdrawn`` set), so the study never ends with more than N finished trials.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.handlers.nonfinite import NonFiniteLossError
from ignite_cv.metrics import MATRIX_METRICS, evaluation_metrics
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.tuning.options import TUNER_FIELDS  # noqa: F401 - re-exported
from ignite_cv.tuning.pruning import PrunerSpec, TrialPruning, TrialRef, pruned_epoch
from ignite_cv.tuning.space import SearchParam
from ignite_cv.utils.errors import UserError

#: Metrics of ``evaluation_metrics`` that are per-class vectors, which cannot be an objective.
PER_CLASS_METRICS = ("precision", "recall", "f1")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class StudyPlan:
    """Everything a worker needs to run trials of one study."""

    base: Any  #: the recipe config with the fixed flags
    space: tuple[SearchParam, ...]
    folder: Path  #: the study folder (trial run folders, results)
    study_name: str
    storage_url: str
    metric: str
    direction: str  #: "maximize" or "minimize"
    target: int
    heartbeat_s: int
    pruner: PrunerSpec

    @property
    def monitor_mode(self) -> str:
        return "max" if self.direction == "maximize" else "min"


class SurplusTrial(Exception):
    """Raised in a trial that another worker's trial made one too many (see the module docstring)."""


def objective_metric(config: Any, metric: str, direction: str) -> tuple[str, str]:
    """``(metric, direction)``: ``--metric`` or the recipe's ``--monitor``; ``auto`` direction follows
    the recipe's ``--monitor-mode`` for its own metric, else minimize ``loss`` and maximize the rest."""
    metric = metric or config.monitor
    scalars = [
        name
        for name in evaluation_metrics(ClassificationTask(11), "cpu")  # 11 classes: every metric there is
        if name not in MATRIX_METRICS and name not in PER_CLASS_METRICS
    ]
    if metric != "auto" and metric not in scalars:
        raise UserError(
            f"--metric {metric!r} is not a validation metric", f"use one of: {', '.join(scalars)}"
        )
    if direction == "auto":
        mode = config.monitor_mode if metric == config.monitor else "auto"
        mode = Monitor.resolve(metric, mode, binary=False).mode  # auto: accuracy or roc_auc, both "max"
        direction = "maximize" if mode == "max" else "minimize"
    return metric, direction


def trial_config(plan: StudyPlan, params: dict[str, Any], run_name: str) -> Any:
    """The config of one trial: fixed flags, drawn values, its run folder, the tuned metric."""
    return dataclasses.replace(
        plan.base,
        **params,
        output_dir=str(plan.folder),
        run_name=run_name,
        resume="",
        monitor=plan.metric,
        monitor_mode=plan.monitor_mode,
    )


def trial_counts(study: optuna.Study) -> Counter:
    """Trials by state name (``complete``, ``pruned``, ``running``, ``fail``, ``waiting``)."""
    return Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))


def finished_count(counts: Counter) -> int:
    return counts["complete"] + counts["pruned"]


def run_study(study: optuna.Study, plan: StudyPlan, say: Callable[[str], None] = print) -> Counter:
    """Run trials until the study holds ``plan.target`` finished trials; returns the final counts."""
    waiting_said = False
    while True:
        optuna.storages.fail_stale_trials(study)  # trials of killed workers: FAIL, queued again
        counts = trial_counts(study)
        finished = finished_count(counts)
        if finished >= plan.target:
            return counts
        if finished + counts["running"] >= plan.target:
            if not waiting_said:
                say(
                    f"{finished}/{plan.target} trials finished, {counts['running']} running elsewhere: "
                    f"waiting for them (a killed worker's trial is re-run after {3 * plan.heartbeat_s}s)"
                )
                waiting_said = True
            time.sleep(plan.heartbeat_s)
            continue
        waiting_said = False
        study.optimize(
            lambda trial: run_trial(study, plan, trial, say),
            n_trials=1,
            catch=(SurplusTrial,),
            gc_after_trial=True,
        )


def run_trial(study: optuna.Study, plan: StudyPlan, trial: optuna.Trial, say: Callable[[str], None]) -> float:
    """One trial: draw, train with pruning, record; returns its value or raises ``TrialPruned``."""
    if not _within_target(study, trial.number, plan.target):
        trial.set_user_attr("withdrawn", "the study reached its target count in other workers")
        say(f"trial {trial.number}: withdrawn, the other workers' trials reach --trials {plan.target}")
        raise SurplusTrial(trial.number)
    from ignite_cv.training.fit import fit  # torch, data and models load here, not at --help

    params = {p.name: p.suggest(trial) for p in plan.space}
    run_name = _free_run_name(plan.folder, trial.number)
    config = trial_config(plan, params, run_name)
    run_dir = plan.folder / run_name
    trial.set_user_attr("config", json.loads(json.dumps(config.to_dict())))
    trial.set_user_attr("run_dir", str(run_dir))
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(
        _frozen(study, trial.number)
    )
    shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
    say(
        f"trial {trial.number}{f' (re-run of killed trial {retried})' if retried is not None else ''}: "
        + shown
    )
    hook = TrialPruning(trial, TrialRef(plan.storage_url, plan.study_name, trial._trial_id, plan.pruner))
    reason = ""
    try:
        summary = fit(config, hooks=[hook])
    except UserError as err:
        if not isinstance(err.__context__, NonFiniteLossError):
            raise
        summary, reason = None, f"non-finite loss: {err.__context__}"
    if summary is None:
        summary = _read_summary(run_dir)
    epoch = pruned_epoch(summary) if not reason else summary.get("epochs_run")
    state = "pruned" if epoch is not None or reason else "complete"
    best = summary.get("best") or {}
    value, metric = best.get("value"), best.get("metric", plan.metric)  # metric: "auto" resolved
    record = {"number": trial.number, "state": state, "params": params, "metric": metric, "value": value}
    if epoch is not None:
        record["pruned_at_epoch"] = epoch
    if reason:
        record["reason"] = reason
    RunFolder(run_dir).write_json("summary.json", {**summary, "trial": record})
    trial.set_user_attr("epochs_run", summary.get("epochs_run"))
    trial.set_user_attr("best_epoch", best.get("epoch"))
    trial.set_user_attr("metric", metric)
    if state == "pruned":
        say(f"trial {trial.number}: pruned at epoch {epoch}" + (f" ({reason})" if reason else ""))
        raise optuna.TrialPruned(reason or f"pruned at epoch {epoch}")
    if value is None or not math.isfinite(value):
        raise optuna.TrialPruned(f"no finite {metric} value")
    say(f"trial {trial.number}: val {metric} {value:.4f} at epoch {best.get('epoch')}")
    return float(value)


def _within_target(study: optuna.Study, number: int, target: int) -> bool:
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    numbers = sorted(t.number for t in study.get_trials(deepcopy=False, states=live))
    return number in numbers[:target]


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _free_run_name(folder: Path, number: int) -> str:
    """``trial-NNNN``; a folder left by another study with the same folder gets a suffix."""
    name = f"trial-{number:04d}"
    if not (folder / name).exists():
        return name
    suffix = 2
    while (folder / f"{name}-{suffix}").exists():
        suffix += 1
    return f"{name}-{suffix}"


def _read_summary(run_dir: Path) -> dict:
    """The summary a run wrote (runs of spawned processes return none); ``{}`` if it wrote none."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def finished_trials(study: optuna.Study, states: Sequence[TrialState] = FINISHED) -> list:
    return study.get_trials(deepcopy=False, states=tuple(states))
