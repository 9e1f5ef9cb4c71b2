"""TensorBoard logging on Ignite's ``TensorboardLogger``, on one timeline across fine-tuning phases.

Scalars, through Ignite's ``OutputHandler``: train metrics per epoch (``train/...``), validation metrics
per epoch (``val/...``; per-class vectors as ``val/NAME/i``), the LR of each parameter group every
``LR_EVERY`` iterations (``lr/group_N``); and the phase index per epoch (``phase``). Text: the resolved
config at the start and the run summary at the end. Images: a grid of fixed validation images titled
"predicted above true" every few epochs (:class:`ValidationImageGrid`).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import TensorboardLogger
from ignite.handlers.tensorboard_logger import OutputHandler

from ignite_cv.image_grid import labelled_grid

#: Events SummaryWriter buffers before the training thread has to wait for its writer thread.
EVENT_QUEUE = 1000
#: The LR is logged every this many iterations.
LR_EVERY = 10
#: The training metrics logged per epoch (:class:`ignite_cv.metrics.TrainingLossAccuracy`).
TRAIN_METRICS = ("loss", "accuracy")
#: The sub-folder of ``tb/`` that holds the HPARAMS entry.
HPARAMS_RUN = "hparams"


def _hparam_value(value):
    """A config value as TensorBoard's HPARAMS takes it: bool, int, float or str."""
    if isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


#: TensorBoard's colour space codes by PIL mode.
_COLORSPACES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def log_png(writer, tag: str, path: str | Path, global_step: int) -> None:
    """Log the PNG file ``path`` as TensorBoard image ``tag``, its bytes as they are.

    ``SummaryWriter.add_image`` takes pixels and encodes a PNG of them again: 30-70 ms for each figure
    of a run's report (half of what its CAM grids cost), for bytes already on disk. ``writer``: a
    ``torch.utils.tensorboard.SummaryWriter`` (its file writer takes the summary protobuf directly).
    """
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as png:  # the header only: size and mode
        width, height, mode = png.width, png.height, png.mode
    image = Summary.Image(
        height=height, width=width, colorspace=_COLORSPACES.get(mode, 3), encoded_image_string=data
    )
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), global_step)


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
        self,
        trainer: Engine,
        evaluator: Engine,
        optimizer: torch.optim.Optimizer,
        phase_index: int,
        val_metric_names: list[str],
        train_metric_names: tuple[str, ...] = TRAIN_METRICS,
    ) -> list:
        """Attach this phase's handlers (Ignite's ``OutputHandler`` for the train and validation metrics
        and the LR); returns the evaluator's handles (remove them when the phase ends).
        ``val_metric_names`` / ``train_metric_names``: the evaluator's / trainer's metrics that are
        scalars or per-class vectors."""
        by_epoch = lambda *_: self.epoch_fn()  # noqa: E731
        by_iteration = lambda *_: self.iteration_fn()  # noqa: E731
        train = OutputHandler("train", metric_names=list(train_metric_names), global_step_transform=by_epoch)
        self.logger.attach(trainer, train, Events.EPOCH_COMPLETED)
        # Ignite's OptimizerParamsHandler steps by the trainer's own iteration, which restarts in every
        # phase; an OutputHandler whose values are the LRs steps by the run's iteration instead.
        lrs = lambda _: {f"group_{i}": g["lr"] for i, g in enumerate(optimizer.param_groups)}  # noqa: E731
        lr = OutputHandler("lr", output_transform=lrs, global_step_transform=by_iteration)
        self.logger.attach(trainer, lr, Events.ITERATION_STARTED(every=LR_EVERY))
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED, lambda _: self.writer.add_scalar("phase", phase_index, self.epoch_fn())
        )
        val = OutputHandler("val", metric_names=list(val_metric_names), global_step_transform=by_epoch)
        return [self.logger.attach(evaluator, val, Events.COMPLETED)]

    def add_hparams(self, config: dict, test_metrics: dict) -> None:
        """The run's config and test metrics for TensorBoard's HPARAMS table (``tb/hparams/``), so that
        ``tensorboard --logdir STUDY`` compares runs in one table. Values TensorBoard cannot show as they
        are (lists, None) are written as text; metrics as ``test/<name>``."""
        hparams = {k: _hparam_value(v) for k, v in config.items()}
        metrics = {
            f"test/{k}": float(v)
            for k, v in test_metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        self.writer.add_hparams(hparams, metrics, run_name=HPARAMS_RUN)

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
