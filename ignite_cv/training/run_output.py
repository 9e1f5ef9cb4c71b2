"""What a training run writes and prints, behind one object: the run folder on rank 0, nothing elsewhere.

Every process of a run holds a :class:`RunOutput`; on rank 0 it owns the run folder (config,
``data_skipped.txt``, checkpoints, ``metrics.jsonl``, TensorBoard, the report, ``summary.json``) and
the console, on the other ranks every method does nothing. So the code of a run has no rank branches:
it asks this object for its history, board and saver (None, None and a saver that writes nowhere on
other ranks) and calls its writing methods everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch

from ignite_cv.data.splits import DataBundle
from ignite_cv.handlers.checkpoint import SafetensorsSaver
from ignite_cv.handlers.history import MetricsHistory
from ignite_cv.handlers.tensorboard import RunTensorBoard
from ignite_cv.run_folder import RunFolder
from ignite_cv.training.loop import Timeline
from ignite_cv.utils.background_writer import BackgroundWriter
from ignite_cv.utils.distributed import say
from ignite_cv.weights import ModelCard


class RunOutput:
    """The run folder's writer (rank 0) or a silent stand-in (other ranks)."""

    def __init__(self, folder: RunFolder | None) -> None:
        self.folder = folder
        #: Writes checkpoint, training-state and history files off the training thread (rank 0).
        self.writer = BackgroundWriter()
        self.board: RunTensorBoard | None = None
        self.history: MetricsHistory | None = None

    @classmethod
    def open(cls, config: Any, resume_dir: str | Path | None = None) -> RunOutput:
        """A new run folder under ``config.output_dir`` (or the resumed one), on rank 0 only."""
        if idist.get_rank() != 0:
            return cls(None)
        if resume_dir:
            return cls(RunFolder(resume_dir))
        return cls(RunFolder.create(config.output_dir, config.recipe, config.run_name))

    @property
    def writes(self) -> bool:
        return self.folder is not None

    @property
    def path(self) -> Path | None:
        return self.folder.path if self.folder is not None else None

    def say(self, message: str) -> None:
        say(message)

    def start(self, config: Any, data: DataBundle, timeline: Timeline, resumed_epochs: int | None) -> None:
        """Open the history and TensorBoard; a new run writes its config and skipped files first, a
        resumed one drops history rows after the epoch it resumes from (``resumed_epochs``; 0 for a run
        that starts over in its folder)."""
        if self.folder is None:
            return
        history = MetricsHistory(self.folder.history, self.writer)
        if resumed_epochs is not None:
            history.truncate(resumed_epochs)
        if resumed_epochs is None:
            self.folder.write_json("config.json", config.to_dict())
        if not resumed_epochs and data.skipped:  # a new run, or one that starts over
            self.folder.write_text("data_skipped.txt", "".join(f"{line}\n" for line in data.skipped))
            self.say(
                f"unreadable files skipped: {len(data.skipped)}, listed in "
                f"{self.folder.path / 'data_skipped.txt'}"
            )
        self.history = history
        self.board = RunTensorBoard(
            self.folder.tensorboard, lambda: timeline.epoch, lambda: timeline.iteration
        )
        self.board.add_text("config", config.to_dict())

    def saver(self, card: ModelCard, epoch_fn) -> SafetensorsSaver:
        """The checkpoint saver of this process (on other ranks one that writes nowhere)."""
        folder = self.folder.checkpoints if self.folder is not None else None
        return SafetensorsSaver(folder, card, epoch_fn, self.writer)

    def write_report(
        self,
        labels: torch.Tensor,
        probs: torch.Tensor,
        class_names: list[str],
        images,
        global_step: int,
        threshold: float | None = None,
    ) -> str | None:
        """The test report in ``report/`` (and its figures in TensorBoard), two classes decided at
        ``threshold``; returns its folder."""
        if self.folder is None:
            return None
        from ignite_cv.report import write_test_report  # matplotlib and scikit-learn load only here

        write_test_report(
            self.folder.report,
            labels.numpy(),
            probs.numpy(),
            class_names,
            images,
            tb_writer=self.board.writer if self.board is not None else None,
            global_step=global_step,
            threshold=threshold,
        )
        return str(self.folder.report)

    def finish(self, summary: dict, step: int, hparams: dict | None = None) -> None:
        """Write ``summary.json`` (last: a run with a summary is complete), log it and close the board;
        ``hparams`` (the config) with the test metrics go to TensorBoard's HPARAMS table."""
        if self.folder is None:
            return
        self.folder.write_json("summary.json", summary)
        if self.board is not None:
            self.board.add_text("summary", summary, step)
            if hparams is not None:
                self.board.add_hparams(hparams, summary.get("test") or {})
            self.board.close()

    def close(self) -> None:
        """Wait for the files in flight (called on every exit path of the training)."""
        self.writer.close()
