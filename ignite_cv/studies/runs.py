"""Read run folders (and study folders of runs) into :class:`RunRecord` s for comparison.

A run folder is any folder with a ``config.json`` (what every recipe writes first). Its other files
may be missing — a run still training has no ``summary.json``, an old one may lack ``report/`` —
and each gap is recorded in :attr:`RunRecord.notes` instead of failing: a comparison shows what each
run has. A study folder holds run folders one level down (and possibly ``study.json``/``study.csv``,
which are not needed: everything is read from the runs themselves).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignite_cv.utils.errors import UserError

__all__ = ["PhaseSpan", "RunRecord", "collect_runs", "is_run_folder", "load_run"]

CONFIG = "config.json"
HISTORY = "metrics.jsonl"
SUMMARY = "summary.json"
CONFUSION_CSV = Path("report") / "confusion_matrix.csv"

_FOLDER_FIX = (
    "pass a run folder (one with config.json, e.g. runs/tinyvgg-20250101-120000) "
    "or a study folder holding run folders"
)


@dataclass(frozen=True)
class PhaseSpan:
    """A phase as seen in ``metrics.jsonl``: its name and first/last epoch on the run's timeline (1-based)."""

    name: str
    first_epoch: int
    last_epoch: int


@dataclass
class RunRecord:
    """What a run folder holds. ``summary`` is ``None`` for a run that has not finished."""

    path: Path
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    # -- summary-derived -------------------------------------------------------------------------

    @property
    def test_metrics(self) -> dict[str, float]:
        test = (self.summary or {}).get("test") or {}
        return {k: v for k, v in test.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def phases(self) -> list[dict[str, Any]]:
        """``summary.json``'s per-phase entries (name, epochs, stopped_by, wall_time_s, params, ...)."""
        return list((self.summary or {}).get("phases") or [])

    @property
    def train_time_s(self) -> float | None:
        """Training time in seconds: the phases' wall times summed (``None`` without a summary)."""
        times = [p.get("wall_time_s") for p in self.phases]
        if times and all(isinstance(t, (int, float)) for t in times):
            return float(sum(times))
        total = (self.summary or {}).get("wall_time_s")
        return float(total) if isinstance(total, (int, float)) else None

    @property
    def unfrozen_blocks(self) -> int | None:
        """Backbone blocks trained in the last phase (0 = head only); ``None`` when the run has no record
        of it (a plain run trains the whole model, it has no backbone/head split)."""
        for phase in reversed(self.phases):
            if "num_unfrozen_blocks" in phase:
                return int(phase["num_unfrozen_blocks"])
        return None

    @property
    def trains_everything(self) -> bool | None:
        """Whether the last phase trained every parameter (``None`` when no parameter counts are stored)."""
        params = (self.phases[-1].get("params") if self.phases else None) or (self.summary or {}).get(
            "params"
        )
        if not params or "total" not in params or "trainable" not in params:
            return None
        return params["trainable"] == params["total"]

    @property
    def test_confusion_matrix(self) -> list[list[int]] | None:
        matrix = (self.summary or {}).get("test_confusion_matrix")
        return matrix if isinstance(matrix, list) and matrix else None

    def epoch_confusion_matrix(self, split: str = "val") -> tuple[list[list[int]], int] | None:
        """``(matrix, epoch)`` of ``split`` (``"train"`` or ``"val"``) at the best epoch (else the last
        epoch that has it), when ``metrics.jsonl`` rows store ``<split>/confusion_matrix`` (a list of
        rows of counts); ``None`` otherwise — today's runs store neither."""
        key = f"{split}/confusion_matrix"
        rows = [r for r in self.history if isinstance(r.get(key), list) and r[key]]
        if not rows:
            return None
        best_epoch = ((self.summary or {}).get("best") or {}).get("epoch")
        chosen = next((r for r in rows if r.get("epoch") == best_epoch), rows[-1])
        return chosen[key], int(chosen.get("epoch", 0))

    # -- history-derived -------------------------------------------------------------------------

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Epochs and values of ``key`` (``"val/accuracy"``, ``"train/loss"``...) where rows have a number."""
        epochs, values = [], []
        for row in self.history:
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "epoch" in row:
                epochs.append(int(row["epoch"]))
                values.append(float(value))
        return epochs, values

    def phase_spans(self) -> list[PhaseSpan]:
        """Consecutive epochs of the same phase in ``metrics.jsonl``, in order."""
        spans: list[PhaseSpan] = []
        for row in self.history:
            if "epoch" not in row:
                continue
            epoch, name = int(row["epoch"]), str(row.get("phase", ""))
            if spans and spans[-1].name == name:
                spans[-1] = PhaseSpan(name, spans[-1].first_epoch, epoch)
            else:
                spans.append(PhaseSpan(name, epoch, epoch))
        return spans


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path} is not valid JSON (line {err.lineno}: {err.msg})",
            f"pass a run folder whose {what} ignite_cv wrote, or restore the file",
        ) from None
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror})", "check its permissions") from None


def _read_history(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    rows, bad = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1  # a line cut short by a kill
            continue
        if isinstance(row, dict):
            rows.append(row)
    if bad:
        notes.append(f"{bad} unreadable line(s) in {HISTORY} skipped")
    return rows


def _read_class_names(path: Path) -> list[str] | None:
    """Class names from the header of ``report/confusion_matrix.csv`` (``true \\ predicted,cat,dog``)."""
    try:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), None)
    except OSError:
        return None
    return [str(name) for name in header[1:]] if header and len(header) > 1 else None


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file()


def load_run(path: str | Path) -> RunRecord:
    """Read one run folder. Raises :class:`UserError` (one line) when ``path`` is not a run folder."""
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"{folder} does not exist", _FOLDER_FIX)
    if not is_run_folder(folder):
        raise UserError(f"{folder} is not a run folder (it has no {CONFIG})", _FOLDER_FIX)
    config = _read_json(folder / CONFIG, CONFIG)
    if not isinstance(config, dict):
        raise UserError(f"{folder / CONFIG} is not a JSON object", _FOLDER_FIX)
    notes: list[str] = []
    history: list[dict[str, Any]] = []
    if (folder / HISTORY).is_file():
        history = _read_history(folder / HISTORY, notes)
    else:
        notes.append(f"no {HISTORY}: no learning curves")
    summary = None
    if (folder / SUMMARY).is_file():
        summary = _read_json(folder / SUMMARY, SUMMARY)
        if not isinstance(summary, dict):
            notes.append(f"{SUMMARY} is not a JSON object: ignored")
            summary = None
    else:
        notes.append(f"no {SUMMARY} (unfinished run?): no test metrics, times or confusion matrix")
    class_names = _read_class_names(folder / CONFUSION_CSV)
    return RunRecord(folder, config, history, summary, class_names, notes)


def _expand(path: Path) -> list[Path]:
    """A run folder itself, or the run folders one level inside a study folder (sorted by name)."""
    if not path.exists():
        raise UserError(f"{path} does not exist", _FOLDER_FIX)
    if path.is_file():
        raise UserError(f"{path} is a file, not a folder", f"pass the folder that holds it; {_FOLDER_FIX}")
    if is_run_folder(path):
        return [path]
    children = sorted(p for p in path.iterdir() if is_run_folder(p))
    if not children:
        raise UserError(
            f"{path} is neither a run folder (no {CONFIG}) nor a study folder (no sub-folder has one)",
            _FOLDER_FIX,
        )
    return children


def collect_runs(paths: Sequence[str | Path] | Iterable[str | Path]) -> list[RunRecord]:
    """Every run of ``paths`` (run folders or study folders), in the order given, each once."""
    folders: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        for folder in _expand(Path(given)):
            key = folder.resolve()
            if key not in seen:
                seen.add(key)
                folders.append(folder)
    if not folders:
        raise UserError("no run folders given", _FOLDER_FIX)
    return [load_run(folder) for folder in folders]
