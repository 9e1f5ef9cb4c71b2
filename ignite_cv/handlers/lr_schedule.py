"""Learning-rate schedules on Ignite's parameter schedulers, with an optional linear warm-up.

All schedules except ``plateau`` run per iteration (attached to ``ITERATION_STARTED``), so the LR
moves smoothly and does not depend on where an epoch ends:

- ``cosine``: from ``lr`` down to ``lr * 1e-3`` over the phase (half a cosine period).
- ``step``: multiply by ``gamma`` every ``step_size`` epochs.
- ``onecycle``: torch's ``OneCycleLR`` (rises to ``lr`` over the first 25 %, anneals to ``lr / 1e4``;
  momentum / Adam β1 cycles inversely). It has its own warm-up, so ``warmup_epochs`` is ignored.
- ``plateau``: multiply by ``plateau_factor`` after ``plateau_patience`` validations without
  improvement of its own metric (``plateau_metric``, by default the validation loss, falling; not the
  metric early stopping and the best model follow), attached to the evaluator.
- ``none``: constant.

``warmup_epochs`` prepends a linear ramp from ``lr / 10`` to the schedule's first value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ignite.engine import Engine, Events
from ignite.handlers import (
    CosineAnnealingScheduler,
    LRScheduler,
    ReduceLROnPlateauScheduler,
    create_lr_scheduler_with_warmup,
)
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.models.options import SCHEDULERS
from ignite_cv.utils.errors import UserError

#: ``cosine`` anneals to this fraction of the peak LR.
COSINE_FINAL_FRACTION = 1e-3
#: A linear warm-up starts at this fraction of the peak LR.
WARMUP_START_FRACTION = 0.1


@dataclass
class ScheduleOptions:
    """Epoch counts are of the phase being scheduled; ``steps_per_epoch`` is optimizer-visible iterations."""

    name: str
    lr: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.1
    plateau_patience: int = 3
    #: The plateau schedule's own validation metric, its direction (auto: min for loss) and LR factor.
    plateau_metric: str = "loss"
    plateau_mode: str = "auto"
    plateau_factor: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.name!r}; choose one of {', '.join(SCHEDULERS)}")
        if self.lr <= 0 or self.epochs < 1 or self.steps_per_epoch < 1:
            raise ValueError("lr must be > 0, epochs and steps_per_epoch >= 1")
        if self.warmup_epochs < 0 or self.step_size < 1 or not 0 < self.gamma <= 1:
            raise ValueError("need warmup_epochs >= 0, step_size >= 1 and 0 < gamma <= 1")
        if not 0 < self.plateau_factor <= 1 or self.plateau_patience < 0:
            raise ValueError("need 0 < plateau_factor <= 1 and plateau_patience >= 0")

    @classmethod
    def from_phase(cls, phase, steps_per_epoch: int) -> ScheduleOptions:
        """The schedule of a :class:`ignite_cv.phases.Phase` with ``steps_per_epoch`` optimizer steps."""
        return cls(
            phase.scheduler,
            phase.lr,
            phase.epochs,
            steps_per_epoch,
            phase.lr_warmup_epochs,
            phase.step_size,
            phase.gamma,
            phase.plateau_patience,
            phase.plateau_metric,
            phase.plateau_mode,
            phase.plateau_factor,
        )

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        return round(self.warmup_epochs * self.steps_per_epoch)


@dataclass
class AttachedSchedule:
    """A schedule attached to a phase: the scheduler (None when constant) and its evaluator handles."""

    scheduler: object | None
    evaluator_handles: list


def attach_lr_schedule(
    options: ScheduleOptions,
    optimizer: torch.optim.Optimizer,
    trainer: Engine,
    evaluator: Engine | None = None,
    monitor: Monitor | None = None,
) -> AttachedSchedule:
    """Build the schedule named in ``options`` and attach it.

    Returns the scheduler (``state_dict``-able, None for a constant LR) and the handles of handlers
    added to the *evaluator* (the plateau schedule), which outlives the phase's trainer: the caller
    removes them when the phase ends. ``monitor`` is unused (the plateau schedule watches
    ``options.plateau_metric``); it is kept for callers that pass it.
    """
    for group in optimizer.param_groups:
        group["lr"] = options.lr
    warmup = options.warmup_steps
    if options.name == "none":
        scheduler = _WarmupOnly(optimizer, options) if warmup else None
        if scheduler is not None:
            trainer.add_event_handler(Events.ITERATION_STARTED, scheduler)
        return AttachedSchedule(scheduler, [])
    if options.name == "plateau":
        if evaluator is None:
            raise ValueError("the plateau schedule needs the evaluator")
        watched = Monitor.resolve(options.plateau_metric, options.plateau_mode, binary=False)
        scheduler = PlateauScheduler(
            optimizer,
            metric_name=watched.metric,
            mode=watched.mode,
            factor=options.plateau_factor,
            patience=options.plateau_patience,
            trainer=trainer,
        )
        handle = evaluator.add_event_handler(Events.COMPLETED, scheduler)
        if warmup:
            trainer.add_event_handler(Events.ITERATION_STARTED, _WarmupOnly(optimizer, options))
        return AttachedSchedule(scheduler, [handle])
    if options.name == "onecycle":
        torch_scheduler = OneCycleLR(optimizer, max_lr=options.lr, total_steps=options.total_steps + 1)
        scheduler = LRScheduler(torch_scheduler)
    elif options.name == "cosine":
        scheduler = CosineAnnealingScheduler(
            optimizer,
            "lr",
            start_value=options.lr,
            end_value=options.lr * COSINE_FINAL_FRACTION,
            cycle_size=max(options.total_steps - warmup, 2),
        )
    else:  # step
        # torch's LambdaLR, stepped per iteration: lr * gamma ** (iteration // iterations per step). Not
        # StepLR: it multiplies the *current* LR, which a warm-up leaves below the peak, so it would stay.
        every, gamma = options.step_size * options.steps_per_epoch, options.gamma
        scheduler = LRScheduler(LambdaLR(optimizer, lambda i: gamma ** (i // every)))
    if warmup and options.name != "onecycle":
        scheduler = create_lr_scheduler_with_warmup(
            scheduler,
            warmup_start_value=options.lr * WARMUP_START_FRACTION,
            warmup_duration=warmup,
            warmup_end_value=options.lr,
        )
    trainer.add_event_handler(Events.ITERATION_STARTED, scheduler)
    return AttachedSchedule(scheduler, [])


class PlateauScheduler(ReduceLROnPlateauScheduler):
    """Ignite's ``ReduceLROnPlateauScheduler`` whose state is plain data (a training state stores it).

    Ignite 0.5.5 replaces the wrapped torch scheduler's ``_reduce_lr`` with a bound method of its own,
    and ``state_dict()`` copies the torch scheduler's ``__dict__``, method included: a training state
    cannot hold it ("method cannot be stored"), so every run with ``--scheduler plateau`` that saved a
    state failed at the end of its first epoch. The method is code, not state: it is left out here and
    stays bound on load (torch's ``load_state_dict`` updates ``__dict__`` with what it is given). A
    metric missing from the evaluator is a one-line error naming the metrics there are.
    """

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["scheduler"] = {k: v for k, v in state["scheduler"].items() if not callable(v)}
        return dict(state)

    def __call__(self, engine: Engine, name: str | None = None) -> None:
        if self.metric_name not in engine.state.metrics:
            names = ", ".join(sorted(engine.state.metrics))
            raise UserError(
                f"--plateau-monitor {self.metric_name!r} is not a validation metric", f"use one of: {names}"
            )
        super().__call__(engine, name)


class _WarmupOnly:
    """Linear warm-up that stops touching the LR once done, so ReduceLROnPlateau can own it afterwards."""

    def __init__(self, optimizer: torch.optim.Optimizer, options: ScheduleOptions) -> None:
        self.optimizer = optimizer
        self.lr = options.lr
        self.steps = options.warmup_steps

    def __call__(self, engine: Engine) -> None:
        iteration = engine.state.iteration  # 1-based at ITERATION_STARTED
        if iteration > self.steps + 1:
            return
        fraction = WARMUP_START_FRACTION + (1 - WARMUP_START_FRACTION) * (iteration - 1) / self.steps
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * fraction

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None
