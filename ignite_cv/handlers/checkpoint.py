"""Model checkpoints as ``.safetensors`` files, managed by Ignite's ``Checkpoint`` (best-k and last).

Ignite's ``Checkpoint`` decides *when* to save and which files to delete (keeping the ``n_saved``
best by score); :class:`SafetensorsSaver` decides *how*: the model's state dict in safetensors with
the run's :class:`~ignite_cv.weights.ModelCard` (plus epoch and score) as metadata, written
atomically, so a fresh process rebuilds the model from the file alone. Nothing is pickled. The
weights are copied at once; the file is written by a
:class:`~ignite_cv.utils.background_writer.BackgroundWriter` (inline by default), in order
with the removals Ignite asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path

import torch
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from torch import nn

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.utils.background_writer import BackgroundWriter, InlineWriter
from ignite_cv.weights import ModelCard, save_weights

BEST_PREFIX = "best"
LAST_PREFIX = "last"


class SafetensorsSaver(BaseSaveHandler):
    """Ignite save handler writing one model state dict per file into ``folder``.

    Ignite's ``Checkpoint`` calls its save handler in every process (its ``DiskSaver`` writes on rank 0
    only); the processes that do not write get a saver with ``folder=None``, which keeps Ignite's
    bookkeeping identical on all ranks and writes nothing.
    """

    def __init__(
        self,
        folder: str | Path | None,
        card: ModelCard,
        epoch_fn: Callable[[], int],
        writer: BackgroundWriter | None = None,
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.card = card
        self.epoch_fn = epoch_fn
        self.writer = writer if writer is not None else InlineWriter()
        self._writes: dict[str, Future] = {}  # file name → its latest write
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if self.folder is None:
            return
        tensors = {
            k: v.detach().to("cpu").contiguous().clone()
            for k, v in checkpoint.items()
            if isinstance(v, torch.Tensor)
        }
        scored = bool(metadata and metadata.get("score_name"))
        card = checkpoint_card(
            self.card,
            int(self.epoch_fn()),
            metadata["score_name"] if scored else None,
            float(metadata["priority"]) if scored else None,
        )
        self._writes[filename] = self.writer.submit(save_weights, self.folder / filename, tensors, card)

    def wait_for(self, path: str | Path) -> None:
        """Block until the file ``path`` (a name this saver wrote) is on disk; re-raise its write's error.
        The writer goes on with what was queued after it."""
        future = self._writes.get(Path(path).name)
        if future is not None:
            future.result()

    def remove(self, filename: str) -> None:
        if self.folder is not None:
            self.writer.submit((self.folder / filename).unlink, True)


def checkpoint_card(
    card: ModelCard, epoch: int, score_name: str | None = None, score: float | None = None
) -> ModelCard:
    """The run's card with the checkpoint's epoch (and score: higher is better) in ``extra``."""
    extra = {**card.extra, "epoch": int(epoch)}
    if score_name:
        extra.update(score_name=score_name, score=float(score))
    return ModelCard(**{**card.__dict__, "extra": extra})


def best_checkpoint(
    model: nn.Module, saver: SafetensorsSaver, monitor: Monitor, keep: int, epoch_fn: Callable[[], int]
) -> Checkpoint:
    """Keep the ``keep`` best models by the monitored validation metric; attach to the evaluator."""
    return Checkpoint(
        {"model": model},
        saver,
        filename_prefix=BEST_PREFIX,
        score_function=monitor.score,
        score_name=monitor.metric,
        n_saved=keep,
        global_step_transform=lambda *_: epoch_fn(),
        filename_pattern="{filename_prefix}_epoch={global_step}_{score_name}={score}.safetensors",
    )


def last_checkpoint(model: nn.Module, saver: SafetensorsSaver, epoch_fn: Callable[[], int]) -> Checkpoint:
    """The model after the latest epoch; attach to the trainer's ``EPOCH_COMPLETED``."""
    return Checkpoint(
        {"model": model},
        saver,
        filename_prefix=LAST_PREFIX,
        n_saved=1,
        global_step_transform=lambda *_: epoch_fn(),
        filename_pattern="{filename_prefix}_epoch={global_step}.safetensors",
    )


def top_checkpoint_path(best: Checkpoint) -> Path | None:
    """The best saved file: the highest score, and among equal scores the earliest epoch; None before the
    first save and in the processes that do not write.

    The tie rule is the one of :class:`~ignite_cv.handlers.best_weights.BestWeights` and of Ignite's
    ``EarlyStopping`` (a later epoch must score strictly better to count as an improvement), so the
    summary's best epoch, the file the test split is evaluated with and the weights ``--prune-after``
    prunes are one model. Ignite's ``Checkpoint`` keeps its files sorted by score with a stable sort, so
    its own ``last_checkpoint`` would name the *latest* of equal scores.
    """
    folder = best.save_handler.folder
    saved = best.state_dict()["_saved"]  # [(priority, filename)], ascending priority, stable among ties
    if folder is None or not saved:
        return None
    top = max(priority for priority, _ in saved)
    return folder / next(filename for priority, filename in saved if priority == top)
