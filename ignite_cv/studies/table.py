"""The comparison table (one row per run) and the names the figures give runs.

Which config fields a comparison is about is found from the runs themselves: a field is *varied*
when its value is not the same in every run's ``config.json`` (a field missing from an older run's
config counts as a different value). Bookkeeping fields that differ between any two runs without
being an experimental choice (output folder, run name, logging cadence...) are left out.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ignite_cv.studies.runs import RunRecord
from ignite_cv.utils.text import human_count, markdown_table

__all__ = [
    "BOOKKEEPING_FIELDS",
    "MetricsTable",
    "metrics_table",
    "mode_label",
    "run_labels",
    "distinguishing_fields",
    "group_labels",
    "label_part",
    "series_label",
    "varied_fields",
    "weights_label",
]

#: Config fields that say where and how a run was logged, not what was trained.
BOOKKEEPING_FIELDS = frozenset(
    {
        "output_dir",
        "run_name",
        "resume",
        "workers",
        "log_every",
        "image_grid_every",
        "keep_states",
        "keep_best",
        "checkpoint_every",
        "nproc_per_node",
        "live_curves",
    }
)

#: Varied fields are listed in this order first (the transfer-learning study's axes), then config order.
FIELD_ORDER = (
    "model",
    "recipe",
    "weights",
    "mode",
    "unfreeze",
    "init",
    "init_distribution",
    "dataset",
    "data_root",
    "image_size",
    "epochs",
    "warmup_epochs",
    "optimizer",
    "lr",
    "batch_size",
    "seed",
)

#: Test metrics are listed in this order first, then any others alphabetically.
METRIC_ORDER = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "top5_accuracy")

_MISSING = object()


def _canonical(value: Any) -> str:
    return "\x00absent" if value is _MISSING else json.dumps(value, sort_keys=True)


def varied_fields(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Config fields whose values differ between the runs (bookkeeping fields excluded), in a fixed order.

    With one run nothing varies. A field present in some configs only is varied (its absence is a value).
    """
    if len(configs) < 2:
        return []
    names: list[str] = []
    for config in configs:
        names.extend(k for k in config if k not in names)
    varied = [
        name
        for name in names
        if name not in BOOKKEEPING_FIELDS
        and len({_canonical(config.get(name, _MISSING)) for config in configs}) > 1
    ]
    ranked = [name for name in FIELD_ORDER if name in varied]
    return ranked + [name for name in varied if name not in ranked]


def weights_label(value: Any) -> str:
    """``none`` → ``random``; ``imagenet`` → ``ImageNet``; a file → its name without folder or suffix."""
    text = str(value) if value not in (None, "") else "none"
    if text == "none":
        return "random"
    if text == "imagenet":
        return "ImageNet"
    stem = Path(text).stem or text
    return stem if len(stem) <= 24 else stem[:23] + "…"


def mode_label(config: dict[str, Any]) -> str:
    """``scratch``, ``extract`` or ``finetune N`` (``N`` = ``--unfreeze``: blocks, or ``all``)."""
    mode = str(config.get("mode", "scratch"))
    return f"finetune {config.get('unfreeze', 'all')}" if mode == "finetune" else mode


def _value_text(value: Any) -> str:
    if value is None or value is _MISSING or value == "":
        return "-"
    if isinstance(value, str) and "/" in value:
        return Path(value).name or value  # a file or folder: its name is enough to tell runs apart
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_value_text(v) for v in value)
    return str(value)


def label_part(config: dict[str, Any], name: str) -> str:
    """How a label shows ``config``'s value of ``name``: networks by name, weights by
    :func:`weights_label`, mode and unfreeze as one :func:`mode_label`, other fields as ``name=value``."""
    value = config.get(name, _MISSING)
    if name in ("model", "recipe"):
        return _value_text(value)
    if name == "weights":
        return weights_label(value if value is not _MISSING else "none")
    if name in ("mode", "unfreeze"):
        return mode_label(config)
    return f"{name}={_value_text(value)}"


def series_label(config: dict[str, Any], fields: Sequence[str]) -> str:
    """``config``'s parts for ``fields`` joined by `` · `` (a part shown once); ``""`` for no fields."""
    parts: list[str] = []
    for name in fields:
        part = label_part(config, name)
        if part not in parts:
            parts.append(part)
    return " · ".join(parts)


#: The study's axes: named in every label when their values differ at all, even where other fields
#: already tell the runs apart.
AXES = ("model", "weights", "mode", "unfreeze", "init")


def distinguishing_fields(
    configs: Sequence[dict[str, Any]], fields: Sequence[str], within: Sequence[str] = ()
) -> list[str]:
    """The fields of ``fields``, in order, that names need, leaving out ``within`` (shown elsewhere: a
    figure's axis or panel): the study's :data:`AXES` whenever they differ, any other field only where
    it tells apart runs that ``within`` and the fields chosen before do not.

    Runs of different recipes differ in many defaults (batch size, optimizer...); once the network
    tells them apart those add nothing, so names stay short: ``tinyvgg · init=kaiming``.
    """
    keys = [tuple(label_part(c, f) for f in within) for c in configs]
    chosen = []
    for name in fields:
        if name in within:
            continue
        parts = [label_part(c, name) for c in configs]
        if any(parts == [label_part(c, other) for c in configs] for other in chosen):
            continue  # shown as one part with a field already chosen (mode and unfreeze)
        refined = [key + (part,) for key, part in zip(keys, parts)]
        differs = len(set(parts)) > 1
        if len(set(refined)) > len(set(keys)) or (name in AXES and differs):
            chosen.append(name)
            keys = refined
    return chosen


def group_labels(
    configs: Sequence[dict[str, Any]], fields: Sequence[str], within: Sequence[str] = ()
) -> list[str]:
    """One label per config that tells it apart from the configs sharing its ``within`` values
    (``""`` where nothing does).

    A field other than the study's :data:`AXES` whose value more than half of the configs share is
    the baseline: it is named only where a config differs from it (``tinyvgg · hidden_units=4``
    beside plain ``tinyvgg``), which keeps every label distinct. In an even grid no value is held by
    more than half, so every label names every field.
    """
    shown = distinguishing_fields(configs, fields, within)
    baseline = {}
    for name in shown:
        if name in AXES:
            continue
        part, count = Counter(label_part(c, name) for c in configs).most_common(1)[0]
        if 2 * count > len(configs):
            baseline[name] = part
    labels = []
    for config in configs:
        parts: list[str] = []
        for name in shown:
            part = label_part(config, name)
            if baseline.get(name) != part and part not in parts:
                parts.append(part)
        labels.append(" · ".join(parts))
    return labels


def run_labels(runs: Sequence[RunRecord], fields: Sequence[str], max_parts: int = 5) -> list[str]:
    """One legend label per run: the values that tell it apart (at most ``max_parts``), else its
    folder name.

    Runs whose labels would be equal (the same values of every varied field) get their folder name
    appended, so every label is unique.
    """
    labels = []
    for run, label in zip(runs, group_labels([r.config for r in runs], fields)):
        parts = label.split(" · ") if label else []
        if len(parts) > max_parts:
            label = " · ".join(parts[:max_parts]) + " …"
        labels.append(label or run.name)
    repeated = {label for label in labels if labels.count(label) > 1}
    return [
        f"{label} [{run.name}]" if label in repeated and label != run.name else label
        for label, run in zip(labels, runs)
    ]


class MetricsTable:
    """The comparison table: ``header`` and ``rows`` of raw values (numbers stay numbers; ``None`` = no
    value), written as CSV (full precision) or markdown (rounded, counts in K/M)."""

    def __init__(self, header: list[str], rows: list[list[Any]]) -> None:
        self.header = header
        self.rows = rows

    def column(self, name: str) -> list[Any]:
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(["" if v is None else _csv_value(v) for v in row])
        return buffer.getvalue()

    def to_markdown(self) -> str:
        cells = [[_markdown_cell(name, v) for name, v in zip(self.header, row)] for row in self.rows]
        return markdown_table(self.header, cells)


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def _markdown_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if column.startswith("params"):
        return human_count(value)
    if column.endswith("_s") or column.startswith("time_s/"):
        return f"{value:.1f}"
    if isinstance(value, float) and (column.startswith("test/") or column == "best_value"):
        return f"{value:.4f}"
    return _value_text(value)


def _metric_names(runs: Sequence[RunRecord]) -> list[str]:
    present = {name for run in runs for name in run.test_metrics}
    ranked = [name for name in METRIC_ORDER if name in present]
    return ranked + sorted(present - set(ranked))


def _phase_names(runs: Sequence[RunRecord]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names.extend(str(p.get("name")) for p in run.phases if str(p.get("name")) not in names)
    return names


def metrics_table(runs: Sequence[RunRecord], fields: Sequence[str] | None = None) -> MetricsTable:
    """One row per run: folder name, the varied config fields, test metrics, the best epoch and its
    metric, epochs run, how the last phase stopped, wall time per phase, training time (sum of the
    phases), the run's wall time (with data loading and the test), and parameter counts (in the
    summary: after the last phase, so a fine-tuned model counts its unfrozen blocks as trainable).

    Columns for metrics or phases some runs lack are kept; those runs get ``None``.
    """
    fields = list(varied_fields([r.config for r in runs]) if fields is None else fields)
    metrics = _metric_names(runs)
    phases = _phase_names(runs)
    header = ["run", *fields, *(f"test/{m}" for m in metrics)]
    header += ["best_metric", "best_value", "best_epoch", "epochs_run", "stopped_by"]
    header += [f"time_s/{p}" for p in phases] + ["train_time_s", "wall_time_s", "params_trainable"]
    header += ["params_total"]
    rows = []
    for run in runs:
        summary = run.summary or {}
        best = summary.get("best") or {}
        params = summary.get("params") or {}
        phase_time = {str(p.get("name")): p.get("wall_time_s") for p in run.phases}
        row: list[Any] = [run.name]
        row += [run.config.get(f) for f in fields]
        row += [run.test_metrics.get(m) for m in metrics]
        last_phase = run.phases[-1] if run.phases else {}
        epochs_run = summary.get("epochs_run", len(run.history) or None)
        row += [
            best.get("metric"),
            best.get("value"),
            best.get("epoch"),
            epochs_run,
            last_phase.get("stopped_by"),
        ]
        row += [phase_time.get(p) for p in phases]
        row += [run.train_time_s, summary.get("wall_time_s"), params.get("trainable"), params.get("total")]
        rows.append(row)
    return MetricsTable(header, rows)
