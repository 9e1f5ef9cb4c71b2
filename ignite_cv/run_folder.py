"""The run folder: one per run, holding everything a run produces.

Layout::

    runs/<recipe>-<YYYYmmdd-HHMMSS>/
        config.json          the resolved config (reload with --config)
        metrics.jsonl        one row per epoch
        tb/                  TensorBoard events
        checkpoints/         best_*.safetensors, last_*.safetensors
        report/              the test report
        data_skipped.txt     unreadable input files, if any
        summary.json         test metrics, best epoch, epochs run, wall time, parameter counts (last)
        .lock                locked by the one process that writes the folder (training/lifecycle.py)

A new run never reuses an existing folder: a name that exists gets a ``-2``, ``-3``... suffix, so
nothing a user already has is overwritten. Only rank 0 creates and writes it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
from ignite_cv.utils.errors import UserError


class RunFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, output_dir: str | Path, recipe: str, run_name: str = "") -> RunFolder:
        base = Path(output_dir)
        name = run_name or f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
        if "/" in name or name in (".", ".."):
            raise UserError(f"--run-name {name!r} is not a folder name", "use letters, digits, '-' and '_'")
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"cannot create --output-dir {base} ({err.strerror})", "pass a writable folder"
            ) from None
        for attempt in range(1, 1000):
            candidate = base / (name if attempt == 1 else f"{name}-{attempt}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            except OSError as err:  # read-only, full, no permission
                raise UserError(
                    f"cannot create a run folder in --output-dir {base} ({err.strerror})",
                    "pass a writable folder with free space",
                ) from None
            return cls(candidate)
        raise UserError(f"too many runs named {name} in {base}", "pass another --run-name")

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    @property
    def report(self) -> Path:
        return self.path / "report"

    @property
    def history(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_json(self, name: str, data: Any) -> Path:
        target = self.path / name
        write_json_atomic(target, data)
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        write_text_atomic(target, text)
        return target
