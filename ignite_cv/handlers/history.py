"""Per-epoch metrics history as JSON lines (``metrics.jsonl``): one row per epoch, appended atomically.

Each row holds the run's epoch, the phase, the learning rate, the wall time of the epoch, and the
scalar train and validation metrics (``train/loss``, ``val/accuracy``, ...). Per-class vectors are
stored as lists. The file is rewritten through a temp file on each append, so a kill never leaves a
half-written line; :meth:`MetricsHistory.truncate` drops rows after an epoch when a run resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ignite_cv.atomic import write_text_atomic


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class MetricsHistory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def append(self, row: dict) -> None:
        """Add one epoch's row, replacing a row of the same epoch if there is one (never a duplicate)."""
        clean = {k: _jsonable(v) for k, v in row.items() if k != "val/confusion_matrix"}
        rows = [r for r in self.rows() if r.get("epoch") != clean.get("epoch")] + [clean]
        rows.sort(key=lambda r: r.get("epoch", 0))
        self._write(rows)

    def truncate(self, last_epoch: int) -> None:
        """Drop rows of epochs after ``last_epoch`` (they belong to a run that is being resumed)."""
        self._write([r for r in self.rows() if r.get("epoch", 0) <= last_epoch])

    def _write(self, rows: list[dict]) -> None:
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))


def epoch_row(epoch: int, phase: str, lr: float, seconds: float, train: dict, val: dict) -> dict:
    row: dict[str, Any] = {"epoch": epoch, "phase": phase, "lr": lr, "epoch_time_s": round(seconds, 3)}
    row.update({f"train/{k}": _jsonable(v) for k, v in train.items()})
    row.update({f"val/{k}": _jsonable(v) for k, v in val.items()})
    return row
