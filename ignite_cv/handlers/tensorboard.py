"""TensorBoard logging on Ignite's ``TensorboardLogger``, on one timeline across fine-tuning phases.

Scalars: train metrics per epoch (``train/...``), validation metrics per epoch (``val/...``), the LR per
iteration (``lr/group_N``) and the phase index per epoch (``phase``). Text: the resolved config at the
start and the run summary at the end. Images: a grid of fixed validation images titled
"predicted above true" every few epochs (:class:`ValidationImageGrid`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import TensorboardLogger

from ignite_cv.image_grid import labelled_grid
from ignite_cv.metrics import scalar_metrics

#: Events SummaryWriter buffers before the training thread has to wait for its writer thread.
EVENT_QUEUE = 1000


class RunTensorBoard:
    """One writer per run; handlers attached per phase with steps that continue the run's timeline.

    ``epoch_fn()`` is the run's epoch and ``iteration_fn()`` the run's iteration (both count across
    phases), so the curves of a fine-tuning run read as one timeline.
    """

    def __init__(
        self, log_dir: str | Path, epoch_fn: Callable[[], int], iteration_fn: Callable[[], int]
    ) -> None:
        # SummaryWriter's default queue of 10 events is shorter than one epoch's scalars (~45), so the
        # training thread waited for the event writer's thread at every epoch end.
        self.logger = TensorboardLogger(log_dir=str(log_dir), max_queue=EVENT_QUEUE)
        self.epoch_fn = epoch_fn
        self.iteration_fn = iteration_fn

    @property
    def writer(self):
        return self.logger.writer

    def attach_phase(
        self, trainer: Engine, evaluator: Engine, optimizer: torch.optim.Optimizer, phase_index: int
    ) -> list:
        """Attach this phase's handlers; returns the evaluator's handle (remove it when the phase ends)."""
        epoch_step = lambda *_: self.epoch_fn()  # noqa: E731
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._log_scalars, "train", epoch_step)
        trainer.add_event_handler(Events.ITERATION_STARTED(every=10), self._log_lr, optimizer)
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED, lambda _: self.writer.add_scalar("phase", phase_index, self.epoch_fn())
        )
        return [evaluator.add_event_handler(Events.COMPLETED, self._log_scalars, "val", epoch_step)]

    def _log_scalars(self, engine: Engine, tag: str, step_fn) -> None:
        step = step_fn()
        for name, value in engine.state.metrics.items():
            if isinstance(value, torch.Tensor) and value.ndim == 1 and value.numel() > 1:
                for i, v in enumerate(value.tolist()):
                    self.writer.add_scalar(f"{tag}/{name}/{i}", v, step)
        for name, value in scalar_metrics(engine.state.metrics).items():
            self.writer.add_scalar(f"{tag}/{name}", value, step)

    def _log_lr(self, engine: Engine, optimizer: torch.optim.Optimizer) -> None:
        for i, group in enumerate(optimizer.param_groups):
            self.writer.add_scalar(f"lr/group_{i}", group["lr"], self.iteration_fn())

    def add_text(self, tag: str, data: dict | str, step: int = 0) -> None:
        text = data if isinstance(data, str) else "```\n" + json.dumps(data, indent=2, default=str) + "\n```"
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        self.logger.close()


class ValidationImageGrid:
    """Every ``every`` epochs, log a grid of fixed validation images labelled with the predicted class
    (green when right, red when wrong) above the true class (grey), drawn with PIL
    (:mod:`ignite_cv.image_grid`: milliseconds, not the 0.1-0.6 s of a matplotlib figure)."""

    def __init__(
        self,
        predict: Callable[[torch.Tensor], torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: list[str],
        board: RunTensorBoard,
        every: int,
    ) -> None:
        """``predict(uint8 images) -> predicted class indices``; ``images`` uint8 (N, C, H, W), N ≤ 32."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.predict = predict
        self.images = images
        self.labels = labels
        self.class_names = class_names
        self.board = board
        self.every = every

    def attach(self, evaluator: Engine) -> None:
        evaluator.add_event_handler(Events.COMPLETED, self._maybe_log)

    def _maybe_log(self, _: Engine) -> None:
        epoch = self.board.epoch_fn()
        if epoch % self.every:
            return
        predicted = self.predict(self.images).cpu().tolist()
        truth = self.labels.cpu().tolist()
        titles = [f"{self.class_names[p]}\n{self.class_names[t]}" for p, t in zip(predicted, truth)]
        correct = [p == t for p, t in zip(predicted, truth)]
        grid = labelled_grid(self.images, titles, correct, ncols=8)
        self.board.writer.add_image("val/predicted_vs_true", grid, epoch, dataformats="HWC")
