"""The epoch loop: the one place where a training phase becomes a running Ignite trainer.

:func:`run_phase` is called by every phase of a run (``training/fit.py``), by pruning's fine-tune
(``prune/workflow.py``) and by whatever trains next (folds, trials). It wraps the model for the
processes (DDP re-wrapped per phase, so blocks unfrozen by the phase are all-reduced), builds the
phase's optimizer and scaler and the trainer, and attaches, in this order:

1. bookkeeping: the run's epoch and iteration across phases (:class:`Timeline`) and the loader's epoch;
2. the non-finite-loss guard (no per-step host sync) and the training loss/accuracy metric;
3. validation at each epoch end (the shared evaluator);
4. the phase's LR schedule and early stopping on the monitored metric;
5. epoch timing, progress, TensorBoard, the metrics-history row and the collapse warning (whichever
   the caller gives);
6. the caller's :class:`PhaseHook` s (checkpoints, training states, profiling...), in order;
7. a resumed state, when there is one (after everything that it restores exists); a state saved as
   the phase ended leaves nothing to train, and the phase returns its result at once.

The handlers it adds to the evaluator, which outlives the phase, are removed when the phase ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping
from torch import nn

from ignite_cv.engine import StepOptions, create_trainer, make_grad_scaler
from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.collapse import CollapseWarning
from ignite_cv.handlers.history import MetricsHistory, epoch_row
from ignite_cv.handlers.lr_schedule import ScheduleOptions, attach_lr_schedule
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.handlers.nonfinite import TerminateOnNonFiniteLoss
from ignite_cv.handlers.progress import ProgressReporter
from ignite_cv.handlers.tensorboard import RunTensorBoard
from ignite_cv.metrics import training_metric_names, training_metrics
from ignite_cv.phases import Phase, make_optimizer
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask
from ignite_cv.training.resume import phase_finished, restore_phase
from ignite_cv.training_state import TrainingState
from ignite_cv.utils.background_writer import BackgroundWriter
from ignite_cv.utils.modules import count_params, unwrap


@dataclass
class Timeline:
    """The run's epoch and iteration, counted across phases: what logs, files and TensorBoard show."""

    epoch: int = 0
    iteration: int = 0


@dataclass
class LoopParts:
    """What every phase of one training shares; they outlive a phase.

    ``total_epochs`` is the planned maximum shown by the progress lines; ``history``, ``board`` and
    ``progress`` are given where the caller writes them (rank 0 of a run; a fine-tune writes its own
    history and prints lines only).
    """

    model: nn.Module
    task: ClassificationTask
    pipeline: BatchPipeline
    device: torch.device
    step: StepOptions
    train_loader: Any
    val_loader: Any
    evaluator: Engine
    monitor: Monitor
    best: BestWeights
    total_epochs: int
    log_every: int = 50
    train_mode: Callable[[nn.Module], None] | None = None
    sync_bn: bool = False
    timeline: Timeline = field(default_factory=Timeline)
    history: MetricsHistory | None = None
    board: RunTensorBoard | None = None
    val_metric_names: list[str] = field(default_factory=list)
    progress: bool = False
    progress_bars: bool | None = None
    #: Writes checkpoint, state and history files off the training thread; waited for at each phase end.
    writer: BackgroundWriter | None = None
    #: One dict per finished phase (what ``summary.json`` lists under ``phases``).
    phase_results: list[dict] = field(default_factory=list)
    #: Warns once when validation predictions fall into one class for several epochs (None: off).
    collapse: CollapseWarning | None = None
    #: ``--train-metrics``: ``basic`` (loss, accuracy) or ``full`` (also precision, recall, F1, AUC).
    train_metrics: str = "basic"


@dataclass
class PhaseRun:
    """The objects one phase trains with: what a training state captures and restores."""

    index: int
    phase: Phase
    trainer: Engine
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scheduler: Any
    stopper: EarlyStopping | None
    nonfinite: TerminateOnNonFiniteLoss
    #: The run's epoch and iteration when the phase started (its epochs and iterations count on from there).
    offset_epoch: int = 0
    offset_iteration: int = 0
    #: The training loss/accuracy metric (a mid-epoch state holds its partial sums).
    training_metric: Any = None


class PhaseHook:
    """Something a caller adds to each phase (override either method): ``attach`` returns handles to
    remove when the phase ends; ``finish`` returns entries for the phase's result."""

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        return []

    def finish(self, parts: LoopParts, run: PhaseRun) -> dict:
        return {}


def run_phase(
    parts: LoopParts,
    phase: Phase,
    index: int,
    hooks: Sequence[PhaseHook] = (),
    resume: TrainingState | None = None,
    say: Callable[[str], None] | None = None,
    wait_files: bool = True,
) -> dict:
    """Train ``phase`` (the ``index``-th of the run) to its end; returns its result dict.

    ``resume``: a training state saved in this phase; the phase continues exactly where it stopped.
    ``wait_files``: wait at the end for the files it queued on ``parts.writer`` (False: the caller
    waits, e.g. for a run's last phase, whose checkpoint and state writes then overlap the test
    evaluation); after an error it always waits. The result is also appended to ``parts.phase_results``.
    """
    started = time.perf_counter()
    change = phase.prepare(unwrap(parts.model)) if phase.prepare else {}
    # Several processes: DDP, re-wrapped per phase. One process: the model as it is (Ignite's auto_model
    # would move it to idist.device(), a GPU even under --device cpu, or wrap it in DataParallel).
    model = unwrap(parts.model)
    if idist.get_world_size() > 1:
        model = idist.auto_model(model, sync_bn=parts.sync_bn)
    optimizer = idist.auto_optim(
        make_optimizer(phase.optimizer, model.parameters(), phase.lr, phase.weight_decay, phase.momentum)
    )
    scaler = make_grad_scaler(parts.device, parts.step.amp)
    trainer = create_trainer(
        model, optimizer, parts.task, parts.pipeline, parts.device, parts.step, scaler, parts.train_mode
    )
    timeline = parts.timeline
    if resume is not None:
        offset_epoch, offset_iteration = resume.meta["offsets"]["epoch"], resume.meta["offsets"]["iteration"]
    else:
        offset_epoch, offset_iteration = timeline.epoch, timeline.iteration

    def on_epoch_started(engine: Engine) -> None:
        timeline.epoch = offset_epoch + engine.state.epoch
        if hasattr(parts.train_loader, "set_epoch"):
            parts.train_loader.set_epoch(timeline.epoch)

    def on_iteration_started(engine: Engine) -> None:
        timeline.iteration = offset_iteration + engine.state.iteration

    trainer.add_event_handler(Events.EPOCH_STARTED, on_epoch_started)
    trainer.add_event_handler(Events.ITERATION_STARTED, on_iteration_started)
    nonfinite = TerminateOnNonFiniteLoss(parts.log_every, epoch_offset=offset_epoch)
    nonfinite.attach(trainer)
    train_metrics = training_metrics(parts.device, parts.task.num_classes, parts.train_metrics)
    for name, metric in train_metrics.items():
        metric.attach(trainer, name)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: parts.evaluator.run(parts.val_loader))

    steps = max(len(parts.train_loader) // parts.step.accumulate_steps, 1)
    schedule = ScheduleOptions.from_phase(phase, steps)
    attached = attach_lr_schedule(schedule, optimizer, trainer, parts.evaluator, parts.monitor)
    handles = list(attached.evaluator_handles)
    stopper = None
    if phase.patience > 0:
        stopper = EarlyStopping(phase.patience, parts.monitor.score, trainer)
        handles.append(parts.evaluator.add_event_handler(Events.COMPLETED, stopper))
    run = PhaseRun(
        index,
        phase,
        trainer,
        optimizer,
        scaler,
        attached.scheduler,
        stopper,
        nonfinite,
        offset_epoch,
        offset_iteration,
        train_metrics["training"],
    )
    handles += _attach_observers(parts, run)
    if parts.collapse is not None:
        handles.append(parts.collapse.attach(parts.evaluator))
    for hook in hooks:
        handles += hook.attach(parts, run)
    # A state saved as the phase ended (killed before what follows it): nothing of it is left to train.
    finished = resume is not None and phase_finished(resume, phase.epochs)
    if resume is not None:
        parts.train_loader.skip_next(restore_phase(parts, run, resume))
    elif change and say is not None:
        say(f"phase {phase.name}: {change}")
    failed = True
    try:
        if not finished:
            trainer.run(parts.train_loader, max_epochs=phase.epochs)
        failed = False
    finally:
        for handle in handles:
            handle.remove()
        if parts.writer is not None and (wait_files or failed):
            parts.writer.wait()  # the phase's files are on disk before anything reads them or the run fails
    extra: dict = {}
    for hook in hooks:
        extra.update(hook.finish(parts, run))
    total, trainable = count_params(parts.model)
    result = {
        "name": phase.name,
        "epochs": trainer.state.epoch,
        "stopped_by": "early_stopping"
        if stopper is not None and (trainer.should_terminate or (finished and resume.meta.get("stopped")))
        else "epochs",
        "wall_time_s": round(time.perf_counter() - started, 2),
        "params": {"total": total, "trainable": trainable},
        **extra,
        **change,
        **phase.info,
    }
    parts.phase_results.append(result)
    return result


def _attach_observers(parts: LoopParts, run: PhaseRun) -> list:
    """Epoch timing, progress lines, TensorBoard and the history row; returns the evaluator's handles."""
    trainer, evaluator, optimizer, phase = run.trainer, parts.evaluator, run.optimizer, run.phase
    epoch_start = {"t": 0.0}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: epoch_start.update(t=time.perf_counter()))
    lr = lambda: optimizer.param_groups[0]["lr"]  # noqa: E731
    handles: list = []
    if parts.progress:
        reporter = ProgressReporter(
            parts.total_epochs,
            lambda: parts.timeline.epoch,
            parts.log_every,
            lr,
            phase=phase.name if phase.name != "train" else None,
            use_bars=parts.progress_bars,
        )
        handles += reporter.attach(trainer, evaluator)
    if parts.board is not None:
        handles += parts.board.attach_phase(
            trainer,
            evaluator,
            optimizer,
            run.index,
            parts.val_metric_names,
            train_metric_names=training_metric_names(parts.train_metrics),
        )
    if parts.history is not None:
        history = parts.history

        def append_row(ev: Engine) -> None:
            seconds = time.perf_counter() - epoch_start["t"]
            row = epoch_row(
                parts.timeline.epoch, phase.name, lr(), seconds, trainer.state.metrics, ev.state.metrics
            )
            history.append(row)

        handles.append(evaluator.add_event_handler(Events.COMPLETED, append_row))
    return handles
