"""Resuming a run: find its folder and config, and save/restore the state of a training phase.

What a state holds is listed in :mod:`ignite_cv.training_state`. :func:`capture` turns the objects a
phase trains with (:class:`ignite_cv.training.loop.PhaseRun`) and the run's shared ones
(:class:`~ignite_cv.training.loop.LoopParts`, the checkpoint bookkeeping) into a
:class:`~ignite_cv.training_state.TrainingState`; :func:`restore_shared` and :func:`restore_phase` put
one back.
Determinism: the data order is a function of (seed, epoch), so a state stores only the position
(phase, epoch, iteration) and the RNG streams; a run resumed with ``--deterministic`` on the CPU
ends bitwise where the uninterrupted run ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from ignite.handlers import Checkpoint

from ignite_cv.training_state import (
    TrainingState,
    optimizer_from_state,
    optimizer_to_state,
    rng_from_state,
    rng_to_state,
)
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.options import load_config_values, make_options

STATE_FOLDER = "state"


def resolve_resume_dir(config) -> Path:
    """``--resume RUN_DIR`` or ``auto`` (the newest run folder of this recipe that holds a state)."""
    if config.resume != "auto":
        run_dir = Path(config.resume)
        if not (run_dir / "config.json").is_file():
            raise UserError(
                f"--resume {run_dir} is not an ignite_cv run folder (no config.json)",
                "pass a folder under --output-dir that a run created",
            )
        return run_dir
    base = Path(config.output_dir)
    candidates = [p for p in base.glob(f"{config.recipe}-*") if (p / "checkpoints" / STATE_FOLDER).is_dir()]
    if not candidates:
        raise UserError(
            f"--resume auto found no resumable {config.recipe} run in {base}",
            "pass --resume RUN_DIR or start a new run",
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def resumed_config(config):
    """The saved config of the run being resumed, pointing ``resume`` at its folder."""
    run_dir = resolve_resume_dir(config)
    values = load_config_values(type(config), run_dir / "config.json")
    values["resume"] = str(run_dir)
    return make_options(type(config), values)


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
    trainer_state = phase.trainer.state
    meta = {
        "phase": phase.index,
        "trainer": {
            "iteration": trainer_state.iteration,
            "epoch_length": trainer_state.epoch_length,
            "max_epochs": trainer_state.max_epochs,
        },
        "offsets": {"epoch": phase.offset_epoch, "iteration": phase.offset_iteration},
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
    phase.trainer.load_state_dict(meta["trainer"])
    augmentation = getattr(parts.pipeline, "augmentation", None)
    aug_states = {k[len("aug.") :]: v for k, v in state.tensors.items() if k.startswith("aug.")}
    if augmentation is not None and aug_states:
        augmentation.set_rng_state(aug_states)
    rng_from_state(state.tensors, meta["rng"])
    return meta["trainer"]["iteration"] % meta["trainer"]["epoch_length"]


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
    "resumed_config",
    "state_folder",
]
