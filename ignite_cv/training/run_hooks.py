"""The phase hooks of a training run: what a run adds to the epoch loop of every phase.

:func:`ignite_cv.training.loop.run_phase` trains one phase and wires what every phase has (evaluation,
LR schedule, history, progress, TensorBoard); :func:`ignite_cv.training.fit.train` adds these
:class:`~ignite_cv.training.loop.PhaseHook` s, each attached anew for each phase: the last
checkpoint, the model summary, weight and gradient histograms, the resumable training states and the
profile. (The live curves are :class:`ignite_cv.training.curves.LiveCurves`; Optuna's pruning handler
is :mod:`ignite_cv.tuning.pruning`.)
"""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from torch import nn

from ignite_cv.profile.layers import model_summary_text
from ignite_cv.profile.run import attach_run_profiler
from ignite_cv.training.curves import LiveCurves
from ignite_cv.training.loop import LoopParts, PhaseHook, PhaseRun
from ignite_cv.training.resume import capture, state_folder
from ignite_cv.training.run_output import RunOutput
from ignite_cv.training_state import snapshot_state, write_state
from ignite_cv.utils.distributed import say
from ignite_cv.utils.modules import unwrap

#: The per-layer model table in the run folder.
MODEL_SUMMARY = "model_summary.txt"


class LastCheckpoint(PhaseHook):
    """The model after each epoch, as ``last_epoch=N.safetensors``."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        run.trainer.add_event_handler(Events.EPOCH_COMPLETED, self.checkpoint)
        return []


class ModelSummary(PhaseHook):
    """``model_summary.txt``: the per-layer table (shapes, parameters, trainable or frozen, MACs) of the
    model as the first phase trains it (after its freezing)."""

    def __init__(self, output: RunOutput, input_shape: tuple[int, ...]) -> None:
        self.output, self.input_shape = output, input_shape

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        if self.output.writes and not (self.output.path / MODEL_SUMMARY).exists():
            self.output.folder.write_text(
                MODEL_SUMMARY, model_summary_text(unwrap(parts.model), self.input_shape)
            )
        return []


class Histograms(PhaseHook):
    """``--log-histograms N``: per-layer weight and gradient-norm histograms every N epochs (rank 0)."""

    def __init__(self, config, output: RunOutput) -> None:
        self.every, self.output = config.log_histograms, output

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        if self.every > 0 and self.output.board is not None:
            from ignite_cv.handlers.histograms import WeightGradientHistograms

            histograms = WeightGradientHistograms(
                unwrap(parts.model), self.output.board.writer, self.every, lambda: parts.timeline.epoch
            )
            histograms.attach(run.trainer)
        return []


def live_curves(config, output: RunOutput) -> LiveCurves | None:
    """``--live-curves``: the hook that keeps ``report/curves.png`` up to date (rank 0; a resumed run's
    earlier epochs come from its history)."""
    if not config.live_curves or not output.writes:
        return None
    rows = output.history.rows() if config.resume and output.history is not None else []
    return LiveCurves(output.path, f"{config.recipe} {output.path.name}", rows, warn=say)


class TrainingStates(PhaseHook):
    """A resumable training state after each epoch (attached after evaluation and the
    checkpoints, so it records them) and every ``--checkpoint-every`` iterations; never one whose loss
    or weights went non-finite."""

    def __init__(self, config, output: RunOutput, checkpoints: dict[str, Checkpoint], elapsed) -> None:
        self.config, self.output, self.checkpoints, self.elapsed = config, output, checkpoints, elapsed

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        if not self.output.writes:
            return []
        folder = state_folder(self.output.path)

        def save(engine: Engine) -> None:
            run.nonfinite.check(engine)
            if not _weights_finite(parts.model):  # diverged in this very step: keep the last good state
                return
            state = capture(parts, run, self.checkpoints, self.elapsed())
            state.meta["config"] = self.config.to_dict()  # a resume checks config.json against it
            snapshot = snapshot_state(state)
            self.output.writer.submit(
                write_state, folder, parts.timeline.iteration, snapshot, self.config.keep_states
            )

        run.trainer.add_event_handler(Events.EPOCH_COMPLETED, save)
        if self.config.checkpoint_every > 0:
            every = Events.ITERATION_COMPLETED(every=self.config.checkpoint_every)
            run.trainer.add_event_handler(every, lambda e: None if _at_epoch_end(e) else save(e))
        return []


class RunProfile(PhaseHook):
    """``--profile`` profiles the first phase into ``<run>/profile/``."""

    def __init__(self, config, output: RunOutput) -> None:
        self.config, self.output = config, output
        self._finish = None

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        if self.config.profile and run.index == 0 and self.output.writes:
            self._finish = attach_run_profiler(
                run.trainer,
                parts.evaluator,
                self.output.path,
                parts.device,
                self.config.profile_warmup_steps,
                self.config.profile_trace_steps,
                say=say,
            )
        return []

    def finish(self, parts: LoopParts, run: PhaseRun) -> dict:
        if self._finish is None:
            return {}
        finish, self._finish = self._finish, None
        return {"profile": finish()}


def _weights_finite(model: nn.Module) -> bool:
    """One host sync: whether every parameter is finite (a NaN or inf makes its sum non-finite; summing
    allocates nothing per element, unlike ``isfinite``)."""
    sums = [p.detach().sum() for p in unwrap(model).parameters()]
    return bool(torch.stack(sums).sum().isfinite()) if sums else True


def _at_epoch_end(engine: Engine) -> bool:
    return engine.state.iteration % engine.state.epoch_length == 0
