"""Pruning: Optuna's Ignite handler on the evaluator of every phase, as a :class:`PhaseHook` for ``fit``.

``optuna-integration``'s :class:`PyTorchIgnitePruningHandler` reports the monitored validation metric
after each evaluation and raises :class:`optuna.TrialPruned` when the pruner says so. We keep it and
change two things around it:

- the step it reports is the run's epoch (the timeline across phases), not the phase trainer's own
  epoch, which restarts at 1 in every phase of a fine-tuning run;
- the exception does not escape through Ignite: the trial's trainer is terminated instead (like early
  stopping), later phases do not train, and the run ends normally — best model on the test split,
  report, ``summary.json`` with the phase marked ``"stopped_by": "pruned"``, and the partial
  ``metrics.jsonl`` (its row for the pruning epoch is written before this handler runs).

With several processes (``--nproc-per-node``) rank 0 alone talks to the study; its decision is
broadcast so every rank stops at the same epoch. Spawned processes get the hook pickled, without the
live trial: rank 0 reopens it from the storage by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ignite.distributed as idist
import optuna
from ignite.engine import Engine, Events
from optuna_integration import PyTorchIgnitePruningHandler

from ignite_cv.training.loop import LoopParts, PhaseHook, PhaseRun, Timeline


@dataclass(frozen=True)
class PrunerSpec:
    """Which pruner and its settings (picklable, so spawned processes can rebuild it)."""

    name: str = "median"
    startup_trials: int = 4
    warmup_epochs: int = 1
    max_epochs: int | None = None

    def build(self) -> optuna.pruners.BasePruner:
        if self.name == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs + 1
            )  # steps are epochs from 1; Optuna prunes from step n_warmup_steps on
        if self.name == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.max_epochs or "auto")
        return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class TrialRef:
    """Where a trial lives, for a process that does not hold the ``optuna.Trial`` object."""

    storage_url: str
    study_name: str
    trial_id: int
    pruner: PrunerSpec

    def open(self) -> optuna.Trial:
        from optuna.storages import RDBStorage

        study = optuna.load_study(
            study_name=self.study_name, storage=RDBStorage(self.storage_url), pruner=self.pruner.build()
        )
        return optuna.trial.Trial(study, self.trial_id)


class _RunEpoch:
    """Looks like a trainer to the handler (it reads ``trainer.state.epoch``): the run's epoch."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline

    @property
    def state(self) -> Any:
        return type("RunEpochState", (), {"epoch": self._timeline.epoch})()


class TrialPruning(PhaseHook):
    """Report the monitored metric to ``trial`` after each validation; stop the run when pruned.

    ``pruned_at`` is the run's epoch at which it was pruned (None while it was not), in this process.
    """

    def __init__(self, trial: optuna.Trial | None, ref: TrialRef | None = None) -> None:
        self.trial, self.ref = trial, ref
        self.pruned_at: int | None = None
        self.message = ""

    def __getstate__(self) -> dict:
        return {**self.__dict__, "trial": None}  # a live trial holds a database session

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        if self.pruned_at is not None:  # an earlier phase was pruned: this one does not train
            return [run.trainer.add_event_handler(Events.STARTED, lambda engine: engine.terminate())]
        handler = None
        if idist.get_rank() == 0:
            if self.trial is None and self.ref is not None:
                self.trial = self.ref.open()
            handler = PyTorchIgnitePruningHandler(self.trial, parts.monitor.metric, _RunEpoch(parts.timeline))

        def check(evaluator: Engine) -> None:
            pruned = False
            if handler is not None:
                try:
                    handler(evaluator)
                except optuna.TrialPruned as err:
                    pruned, self.message = True, str(err)
            if idist.get_world_size() > 1:
                pruned = idist.broadcast(float(pruned), src=0) > 0.5
            if pruned:
                self.pruned_at = parts.timeline.epoch
                run.trainer.terminate()

        return [parts.evaluator.add_event_handler(Events.COMPLETED, check)]

    def finish(self, parts: LoopParts, run: PhaseRun) -> dict:
        if self.pruned_at is None:
            return {}
        return {"stopped_by": "pruned", "pruned_at_epoch": self.pruned_at}


def pruned_epoch(summary: dict) -> int | None:
    """The run's epoch at which a trial's run was pruned, from its summary (None: not pruned)."""
    for phase in summary.get("phases", []):
        if phase.get("stopped_by") == "pruned":
            return phase.get("pruned_at_epoch")
    return None
