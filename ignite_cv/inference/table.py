"""The predictions CSV: one row per input file, sorted by path, written atomically.

Columns: ``path`` (as given or found: ``FOLDER/file.jpg``, ``ARCHIVE.zip::member``), ``status``
(``ok`` or ``skipped``), ``predicted`` (the decision rule's class), ``probability`` (of the predicted
class), ``prob_<class>`` for every class in the model's order, with ``--top-k K`` the columns
``top1 … topK`` and ``top1_probability …``, and ``reason`` (why a file was skipped; empty for ``ok``).
Skipped files have empty prediction columns. Rows are sorted by ``path`` (code point order); a path
that occurs twice (a file named on its own and inside a folder given too) is listed once.

Probabilities are written as the shortest decimal that reads back to the same float32
(``numpy.float32(text)`` equals the model's value exactly).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ignite_cv.inference.results import PredictionSet
from ignite_cv.utils.atomic import atomic_path


def format_probability(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def header(class_names: list[str], top_k: int = 0) -> list[str]:
    columns = ["path", "status", "predicted", "probability", *(f"prob_{name}" for name in class_names)]
    for i in range(1, top_k + 1):
        columns += [f"top{i}", f"top{i}_probability"]
    return [*columns, "reason"]


def rows(result: PredictionSet, top_k: int = 0) -> list[list[str]]:
    """The CSV's rows (without the header), sorted by path, one per distinct path."""
    top_k = min(max(0, top_k), len(result.class_names))
    out: dict[str, list[str]] = {}
    for p in result.predictions:
        if p.source in out:
            continue
        row = [p.source, "ok", p.label, format_probability(p.probability)]
        row += [format_probability(p.probabilities[name]) for name in result.class_names]
        for name, value in p.top(top_k):
            row += [name, format_probability(value)]
        out[p.source] = [*row, ""]
    blanks = 2 + len(result.class_names) + 2 * top_k
    for left in result.skipped:
        out.setdefault(left.source, [left.source, "skipped", *([""] * blanks), left.reason])
    return [out[key] for key in sorted(out)]


def write_predictions_csv(path: str | Path, result: PredictionSet, top_k: int = 0) -> int:
    """Write the CSV to ``path`` atomically (a reader never sees half of it); returns the row count."""
    top_k = min(max(0, top_k), len(result.class_names))
    body = rows(result, top_k)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header(result.class_names, top_k))
        writer.writerows(body)
    return len(body)
