"""Resuming a run: save and restore the state of a training phase.

What a state holds is listed in :mod:`ignite_cv.training_state`. :func:`capture` turns the objects a
phase trains with (:class:`ignite_cv.training.loop.PhaseRun`) and the run's shared ones
(:class:`~ignite_cv.training.loop.LoopParts`, the checkpoint bookkeeping) into a
:class:`~ignite_cv.training_state.TrainingState`; :func:`restore_shared` and :func:`restore_phase` put
one back.
Determinism: the data order is a function of (seed, epoch), so a state stores only the position
(phase, epoch, iteration) and the RNG streams; a run resumed with ``--deterministic`` on the CPU
ends bitwise where the uninterrupted run ends. A mid-epoch state also holds the training metric's
partial sums, so the resumed epoch's training loss covers the whole epoch, as it would have. A state
saved when its phase ended (its last epoch, or early stopping) marks the phase finished: a resume
from it skips to what comes next (the next phase, or the test evaluation, report and summary).
Finding and locking the run folder is :mod:`ignite_cv.training.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from ignite.engine import Events
from ignite.handlers import Checkpoint

from ignite_cv.training_state import (
    TrainingState,
    optimizer_from_state,
    optimizer_to_state,
    rng_from_state,
    rng_to_state,
)
from ignite_cv.utils.modules import unwrap

STATE_FOLDER = "state"


def capture(parts, phase, checkpoints: dict[str, Checkpoint], elapsed_s: float) -> TrainingState:
    """Everything needed to continue ``phase`` (a ``PhaseRun``) exactly: tensors and JSON.

    ``checkpoints``: Ignite ``Checkpoint`` s by name, whose saved-file bookkeeping comes along."""
    tensors = {f"model.{k}": v for k, v in unwrap(parts.model).state_dict().items()}
    optim_tensors, optim_meta = optimizer_to_state(phase.optimizer, "optim")
    tensors.update(optim_tensors)
    rng_tensors, rng_meta = rng_to_state()
    tensors.update(rng_tensors)
    augmentation = getattr(parts.pipeline, "augmentation", None)
    if augmentation is not None and hasattr(augmentation, "get_rng_state"):
        tensors.update({f"aug.{device}": s for device, s in augmentation.get_rng_state().items()})
    if parts.best.has_best:
        tensors.update({f"best.{k}": v for k, v in parts.best.state_tensors().items()})
    metric = getattr(phase, "training_metric", None)
    if metric is not None and hasattr(metric, "partial_state"):
        tensors.update({f"train_metric.{k}": v for k, v in metric.partial_state().items()})
    trainer_state = phase.trainer.state
    meta = {
        "phase": phase.index,
        "trainer": {
            "iteration": trainer_state.iteration,
            "epoch_length": trainer_state.epoch_length,
            "max_epochs": trainer_state.max_epochs,
        },
        "offsets": {"epoch": phase.offset_epoch, "iteration": phase.offset_iteration},
        # early stopping ended the phase in this epoch (the state is saved after the evaluation)
        "stopped": bool(phase.trainer.should_terminate),
        "run": {"epoch": parts.timeline.epoch, "iteration": parts.timeline.iteration, "elapsed_s": elapsed_s},
        "optimizer": optim_meta,
        "scaler": phase.scaler.state_dict(),
        "scheduler": phase.scheduler.state_dict() if phase.scheduler is not None else None,
        "stopper": phase.stopper.state_dict() if phase.stopper is not None else None,
        "best": parts.best.summary_state(),
        **{f"{name}_checkpoints": _checkpoint_items(c) for name, c in checkpoints.items()},
        "phase_results": parts.phase_results,
        "rng": rng_meta,
    }
    return TrainingState(tensors, meta)


def phase_finished(state: TrainingState, planned_epochs: int) -> bool:
    """Whether the phase ``state`` was saved in had ended: early stopping, or ``planned_epochs`` done."""
    trainer = state.meta["trainer"]
    return bool(state.meta.get("stopped")) or trainer["iteration"] >= planned_epochs * trainer["epoch_length"]


def training_finished(state: TrainingState, planned_epochs: list[int]) -> bool:
    """Whether every phase of the run had ended when ``state`` was saved (``planned_epochs`` per phase)."""
    index = state.meta["phase"]
    return index == len(planned_epochs) - 1 and phase_finished(state, planned_epochs[index])


def completed_epochs(state: TrainingState) -> int:
    """Epochs of the run finished when ``state`` was saved (a mid-epoch state counts the ones before)."""
    trainer = state.meta["trainer"]
    return state.meta["offsets"]["epoch"] + trainer["iteration"] // trainer["epoch_length"]


def restore_shared(parts, state: TrainingState, checkpoints: dict[str, Checkpoint]) -> None:
    """Restore what outlives a phase: model weights, best weights, checkpoint bookkeeping, timeline."""
    unwrap(parts.model).load_state_dict(_prefixed(state.tensors, "model."))
    parts.best.load_summary_state(state.meta["best"], _prefixed(state.tensors, "best."))
    for name, checkpoint in checkpoints.items():
        _load_checkpoint_items(checkpoint, state.meta[f"{name}_checkpoints"])
    parts.phase_results[:] = list(state.meta["phase_results"])
    parts.timeline.epoch = completed_epochs(state)
    parts.timeline.iteration = state.meta["run"]["iteration"]


def restore_phase(parts, phase, state: TrainingState) -> int:
    """Put a phase back where ``state`` left it; returns how many batches of the current epoch are done."""
    meta = state.meta
    optimizer_from_state(phase.optimizer, state.tensors, meta["optimizer"], "optim")
    if meta["scaler"]:
        phase.scaler.load_state_dict(meta["scaler"])
    if phase.scheduler is not None and meta["scheduler"] is not None:
        phase.scheduler.load_state_dict(meta["scheduler"])
    if phase.stopper is not None and meta["stopper"] is not None:
        phase.stopper.load_state_dict(meta["stopper"])
    # The phase's own length (more epochs than the state's when --epochs extends the run on resume).
    phase.trainer.load_state_dict({**meta["trainer"], "max_epochs": max(phase.phase.epochs, 1)})
    augmentation = getattr(parts.pipeline, "augmentation", None)
    aug_states = {k[len("aug.") :]: v for k, v in state.tensors.items() if k.startswith("aug.")}
    if augmentation is not None and aug_states:
        augmentation.set_rng_state(aug_states)
    rng_from_state(state.tensors, meta["rng"])
    done = meta["trainer"]["iteration"] % meta["trainer"]["epoch_length"]
    partial = _prefixed(state.tensors, "train_metric.")
    metric = getattr(phase, "training_metric", None)
    if done and partial and metric is not None:
        _restore_after_reset(phase.trainer, metric, partial)
    return done


def _restore_after_reset(trainer, metric, partial: dict[str, torch.Tensor]) -> None:
    """Put the training metric's partial sums back once, right after Ignite resets it at the start of
    the resumed epoch (this handler is added after the metric's own, so it runs after the reset)."""
    pending = {"partial": partial}

    def restore(_engine) -> None:
        if pending:
            metric.load_partial_state(pending.pop("partial"))

    trainer.add_event_handler(Events.EPOCH_STARTED, restore)


class SkippingLoader:
    """Wraps a loader so that the next pass skips its first ``k`` batches (a resumed, half-done epoch).

    Ignite restarts the data iterator when it resumes mid-epoch; since the epoch's order is a function
    of (seed, epoch), dropping the batches already trained on continues exactly where the run stopped.
    """

    def __init__(self, loader) -> None:
        self.loader = loader
        self._skip = 0

    def skip_next(self, batches: int) -> None:
        self._skip = batches

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        skip, self._skip = self._skip, 0
        for i, batch in enumerate(self.loader):
            if i >= skip:
                yield batch


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _checkpoint_items(checkpoint: Checkpoint) -> list:
    """Ignite's record of a ``Checkpoint``'s saved files, ``[[priority, filename], ...]``, as JSON."""
    return [[priority, filename] for priority, filename in checkpoint.state_dict()["_saved"]]


def _load_checkpoint_items(checkpoint: Checkpoint, items: list) -> None:
    checkpoint.load_state_dict({"_saved": [tuple(item) for item in items]})


def state_folder(run_path: Path) -> Path:
    return Path(run_path) / "checkpoints" / STATE_FOLDER


__all__ = [
    "SkippingLoader",
    "capture",
    "completed_epochs",
    "restore_phase",
    "restore_shared",
    "phase_finished",
    "training_finished",
    "state_folder",
]
