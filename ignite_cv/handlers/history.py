"""Per-epoch metrics history as JSON lines (``metrics.jsonl``): one row per epoch, appended atomically.

Each row holds the run's epoch, the phase, the learning rate, the wall time of the epoch, and the
scalar train and validation metrics (``train/loss``, ``val/accuracy``, ...). Per-class vectors are
stored as lists, the validation confusion matrix (up to ``MAX_MATRIX_CLASSES`` classes) as a list of
rows. A row is appended (flushed and fsynced) in one write — on the run's background writer when one
is given, in order with the checkpoints, so the fsync does not hold up training; a
line cut short by a kill is ignored when reading, and :meth:`MetricsHistory.truncate`, which a
resumed run calls first, rewrites the file atomically without it and without rows after the resumed
epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ignite_cv.utils.atomic import write_text_atomic
from ignite_cv.utils.background_writer import BackgroundWriter, InlineWriter


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class MetricsHistory:
    def __init__(self, path: str | Path, writer: BackgroundWriter | None = None) -> None:
        self.path = Path(path)
        self.writer = writer if writer is not None else InlineWriter()

    def rows(self) -> list[dict]:
        self.writer.wait()
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return rows

    def append(self, row: dict) -> None:
        """Add one epoch's row (one write, flushed and fsynced; by the writer, if there is one)."""
        clean = {k: _jsonable(v) for k, v in row.items() if not _large_matrix(k, v)}
        self.writer.submit(_append_line, self.path, json.dumps(clean) + "\n")

    def truncate(self, last_epoch: int) -> None:
        """Drop rows of epochs after ``last_epoch`` (they belong to a run that is being resumed)."""
        self._write([r for r in self.rows() if r.get("epoch", 0) <= last_epoch])

    def _write(self, rows: list[dict]) -> None:
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))


#: Confusion matrices of up to this many classes are kept in the history (k² integers per epoch).
MAX_MATRIX_CLASSES = 50


def _large_matrix(key: str, value: Any) -> bool:
    return key.endswith("confusion_matrix") and len(value) > MAX_MATRIX_CLASSES


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def epoch_row(epoch: int, phase: str, lr: float, seconds: float, train: dict, val: dict) -> dict:
    row: dict[str, Any] = {"epoch": epoch, "phase": phase, "lr": lr, "epoch_time_s": round(seconds, 3)}
    row.update({f"train/{k}": _jsonable(v) for k, v in train.items()})
    row.update({f"val/{k}": _jsonable(v) for k, v in val.items()})
    return row
