"""Compare runs: the metrics table (markdown, CSV) and the comparison figures (PNG) in one folder.

``compare_runs(paths, output_dir)`` reads run folders and study folders (:mod:`.runs`), finds the
config fields that differ (:mod:`.table`), and writes, each file atomically:

=============================  ========================================================================
``metrics.csv``, ``metrics.md``  one row per run (9.7): varied fields, test metrics, best epoch, times, params
``learning_curves.png``          9.1: loss, accuracy, AUC, precision, recall, F1 per epoch; phases marked
``training_time.png``            9.2: training time per network, coloured by mode, a panel per weights
``accuracy_by_weights.png``      9.3: test accuracy with every layer trained, pretrained vs random
``accuracy_by_unfrozen.png``     9.4: test accuracy by number of backbone blocks trained
``metrics_table.png``            9.7 at a glance: test accuracy and time, networks × settings
``confusion_matrices_test.png``  9.5/9.6: one confusion matrix per run, on the test split
``confusion_matrices_val.png``   the same on validation (and ``_train`` on training), only when stored
=============================  ========================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from ignite_cv.figures import save_figure
from ignite_cv.studies import figures
from ignite_cv.studies.runs import RunRecord, collect_runs, is_run_folder
from ignite_cv.studies.table import MetricsTable, metrics_table, run_labels, varied_fields
from ignite_cv.utils.atomic import write_text_atomic

__all__ = ["CompareResult", "compare_runs", "default_output_dir"]

#: Said once per split when no run stores its per-epoch confusion matrices (today's runs store none).
NO_EPOCH_CONFUSION = (
    "confusion matrices: no run stores {split} confusion matrices in metrics.jsonl "
    "(`{key}`); the test split's come from summary.json"
)
#: The per-epoch splits whose confusion matrices are drawn when stored: (key prefix, name, file).
EPOCH_SPLITS = (
    ("train", "training", "confusion_matrices_train.png"),
    ("val", "validation", "confusion_matrices_val.png"),
)


@dataclass
class CompareResult:
    output_dir: Path
    runs: list[RunRecord]
    fields: list[str]
    labels: list[str]
    table: MetricsTable
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_output_dir(paths: Sequence[str | Path]) -> Path:
    """``<STUDY>/compare`` for one study folder; otherwise ``compare`` in the current folder."""
    if len(paths) == 1 and Path(paths[0]).is_dir() and not is_run_folder(Path(paths[0])):
        return Path(paths[0]) / "compare"
    return Path("compare")


def _markdown(result: CompareResult) -> str:
    lines = [f"# Comparison of {len(result.runs)} run(s)", ""]
    varied = ", ".join(f"`{f}`" for f in result.fields) if result.fields else "none (identical configs)"
    lines += [f"Config fields that differ between the runs: {varied}.", ""]
    lines += [result.table.to_markdown().rstrip("\n"), ""]
    lines += [
        "Times in seconds: `time_s/<phase>` per phase, `train_time_s` their sum, `wall_time_s` the",
        "whole run (data, test and report included). Parameters after the last phase.",
        "",
    ]
    lines += ["## Names in the figures", ""]
    lines += [f"- {label}: `{run.path}`" for label, run in zip(result.labels, result.runs)]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def compare_runs(
    paths: Sequence[str | Path], output_dir: str | Path | None = None, metric: str = "accuracy"
) -> CompareResult:
    """Read ``paths`` (run or study folders), write the table and figures into ``output_dir``.

    ``metric``: the test metric of the accuracy figures (9.3, 9.4, 9.7). A path that is neither a run
    nor a study folder raises :class:`~ignite_cv.utils.errors.UserError` before anything is written.
    """
    runs = collect_runs(paths)
    out = Path(output_dir) if output_dir is not None else default_output_dir(paths)
    fields = varied_fields([r.config for r in runs])
    labels = run_labels(runs, fields)
    result = CompareResult(out, runs, fields, labels, metrics_table(runs, fields))
    result.notes = [f"{run.name}: {note}" for run in runs for note in run.notes]
    if runs and not any(metric in r.test_metrics for r in runs):
        result.notes.append(f"no run has a test metric {metric!r}: the accuracy figures are empty")

    test_items = [(label, r.test_confusion_matrix, r.class_names) for label, r in zip(labels, runs)]
    drawings: list[tuple[str, Callable[[], Figure]]] = [
        ("learning_curves.png", lambda: figures.learning_curves_figure(runs, labels)),
        ("training_time.png", lambda: figures.training_time_figure(runs, fields)),
        ("accuracy_by_weights.png", lambda: figures.accuracy_by_weights_figure(runs, fields, metric)),
        ("accuracy_by_unfrozen.png", lambda: figures.accuracy_by_unfrozen_figure(runs, fields, metric)),
        ("metrics_table.png", lambda: figures.metrics_heatmap_figure(runs, fields, metric)),
        (
            "confusion_matrices_test.png",
            lambda: figures.confusion_grid_figure([i for i in test_items if i[1] is not None], "test"),
        ),
    ]
    for key, split, filename in EPOCH_SPLITS:
        items = []
        for label, run in zip(labels, runs):
            stored = run.epoch_confusion_matrix(key)
            if stored is not None:
                items.append((f"{label} (epoch {stored[1]})", stored[0], run.class_names))
        if items:
            drawings.append((filename, functools.partial(figures.confusion_grid_figure, items, split)))
        else:
            result.notes.append(NO_EPOCH_CONFUSION.format(split=split, key=f"{key}/confusion_matrix"))

    result.files.append(out / "metrics.csv")
    write_text_atomic(out / "metrics.csv", result.table.to_csv())
    for name, draw in drawings:
        result.files.append(save_figure(draw(), out / name))
    result.files.append(out / "metrics.md")
    write_text_atomic(out / "metrics.md", _markdown(result))
    return result
