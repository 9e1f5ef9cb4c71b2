"""The comparison figures of a set of runs, drawn without pyplot (see :mod:`ignite_cv.figures` for why).

Each function takes :class:`~ignite_cv.studies.runs.RunRecord` s (plus their legend labels and the
varied config fields where it groups runs) and returns a :class:`matplotlib.figure.Figure` on the Agg
canvas; :func:`ignite_cv.figures.save_figure` writes it atomically. Where no run has what a figure
needs, the figure says so in words instead of being blank. Layouts are sized for 1 to a few dozen
runs: legends sit under the axes, long names wrap, colours cycle through ``tab10`` with a new
marker for every ten runs.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ignite_cv.figures import fixed_margins, short_label, text_figure
from ignite_cv.studies.runs import RunRecord
from ignite_cv.studies.table import (
    distinguishing_fields,
    group_labels,
    mode_label,
    series_label,
    weights_label,
)

__all__ = [
    "CURVE_METRICS",
    "accuracy_by_unfrozen_figure",
    "accuracy_by_weights_figure",
    "confusion_grid_figure",
    "learning_curves_figure",
    "metrics_heatmap_figure",
    "training_time_figure",
]

#: (metrics.jsonl key without the split prefix, panel title, y-axis label) of the learning curves.
CURVE_METRICS = (
    ("loss", "loss", "loss (per sample)"),
    ("accuracy", "accuracy", "accuracy (fraction)"),
    ("roc_auc", "ROC-AUC", "AUC (binary, or macro one-vs-rest)"),
    ("precision_macro", "precision (macro)", "precision (fraction)"),
    ("recall_macro", "recall (macro)", "recall (fraction)"),
    ("f1_macro", "F1 (macro)", "F1 (fraction)"),
)
MARKERS = ("o", "s", "^", "D", "v", "P")
#: Epoch counts up to this get a marker on every point (a 1-epoch run is a point, not a line).
MARKER_MAX_EPOCHS = 30
LEGEND_WRAP = 46
#: At most this many classes get per-cell counts in a confusion-matrix panel of the grid.
GRID_CELL_TEXT_MAX = 10


def _new_figure(width_in: float, height_in: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def run_style(index: int) -> tuple[Any, str]:
    """(colour, marker) of the ``index``-th run: ``tab10`` colours, a new marker every 10 runs."""
    return colormaps["tab10"](index % 10), MARKERS[(index // 10) % len(MARKERS)]


def _hue_colors(keys: Sequence[str]) -> dict[str, Any]:
    cmap = colormaps["tab10"] if len(keys) <= 10 else colormaps["tab20"]
    return {key: cmap(i % cmap.N) for i, key in enumerate(keys)}


def _legend_columns(width_in: float, labels: Sequence[str], ncols: int = 3) -> int:
    """``ncols`` columns at most, fewer when the longest label would make the legend wider than the
    figure (about 4.7 pt per character at 8 pt, plus the handle and padding)."""
    longest = max((max(len(line) for line in label.split("\n")) for label in labels), default=1)
    return max(1, min(ncols, len(labels), int(width_in * 72 // (4.7 * longest + 40))))


def _legend_height(labels: Sequence[str], columns: int) -> float:
    """Inches a bottom legend of ``labels`` in ``columns`` takes: its title and rows of 8-pt lines."""
    rows = [labels[i : i + columns] for i in range(0, len(labels), columns)]
    lines = sum(max(label.count("\n") + 1 for label in row) for row in rows)
    return 0.42 + lines * 8 * 1.45 / 72


def _bottom_legend(
    fig: Figure, handles: Sequence[Any], title: str, ncols: int = 3, outside: bool = True
) -> None:
    """A legend under the axes (the title stays clear of it), :func:`_legend_columns` wide.
    ``outside``: placed by constrained layout; else at the bottom edge of a figure whose margins leave
    :func:`_legend_height` for it."""
    labels = [h.get_label() for h in handles]
    fig.legend(
        handles=list(handles),
        loc="outside lower center" if outside else "lower center",
        ncols=_legend_columns(fig.get_figwidth(), labels, ncols),
        fontsize=8,
        title=title,
        title_fontsize=9,
        **({} if outside else {"bbox_to_anchor": (0.5, 0.0), "borderaxespad": 0.3}),
    )


def _wrap(text: str, width: int = LEGEND_WRAP) -> str:
    return textwrap.fill(text, width=width, break_long_words=True)


def _model_of(run: RunRecord) -> str:
    return str(run.config.get("model") or run.config.get("recipe") or run.name)


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


# ----------------------------------------------------------------------------------------------
# 9.1 learning curves


def _phase_key(run: RunRecord) -> tuple[tuple[str, int], ...]:
    """Where a run's phases start (name, first epoch): runs stopped early at other epochs still match."""
    return tuple((span.name, span.first_epoch) for span in run.phase_spans())


def _phase_marks(runs: Sequence[RunRecord]) -> tuple[str, tuple[tuple[str, int], ...]]:
    """How to mark phases: ``"bands"`` (every run has the same phases, several), ``"shared"`` (the runs
    with several phases change at the same epochs; others have one phase), ``"per-run"`` or ``"none"``;
    with the shared phase starts."""
    keys = {_phase_key(r) for r in runs if r.history}
    multi = {key for key in keys if len(key) > 1}
    if not multi:
        return "none", ()
    if len(keys) == 1:
        return "bands", next(iter(keys))
    return ("shared", next(iter(multi))) if len(multi) == 1 else ("per-run", ())


def learning_curves_figure(
    runs: Sequence[RunRecord], labels: Sequence[str], suptitle: str = "Learning curves per epoch (9.1)"
) -> Figure:
    """Loss, accuracy, ROC-AUC, macro precision/recall/F1 per epoch: one colour per run, validation solid,
    training dashed (only the metrics ``metrics.jsonl`` holds for training: today loss and accuracy).

    Phase changes: when every run has the same phases starting at the same epochs, the phases are
    grey bands named at the top; when only the multi-phase runs share them, grey dotted lines named at
    the top; otherwise each run's changes are dotted lines in its colour. Lines carry ``gid``
    ``"val:<i>"``/``"train:<i>"`` (run index), phase lines ``"phase:<i>"`` or ``"phase:shared"``.
    """
    panels = [
        (key, title, unit)
        for key, title, unit in CURVE_METRICS
        if any(r.series(f"val/{key}")[0] or r.series(f"train/{key}")[0] for r in runs)
    ]
    if not panels:
        return text_figure("no learning curves: no run has metrics.jsonl rows", 7.0)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    marks, starts = _phase_marks(runs)
    legend_labels = [
        _wrap(label if run.history else f"{label} (no epoch recorded)") for label, run in zip(labels, runs)
    ]
    legend_labels += ["validation", "training"] + ([] if marks == "none" else ["phase change (run's colour)"])
    width = 4.6 * ncols + 0.4
    legend = _legend_height(legend_labels, _legend_columns(width, legend_labels))
    # A fixed layout (inches): this figure is redrawn as a run trains, and constrained layout was a third
    # of its drawing time.
    fig = _new_figure(width, 3.3 * nrows + 0.9 + legend, layout=None)
    fixed_margins(fig, left=0.75, right=0.2, bottom=0.55 + legend, top=0.75, wspace=0.3, hspace=0.45)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    last_epoch = max((span.last_epoch for r in runs for span in r.phase_spans()), default=1)
    first_epoch = min((span.first_epoch for r in runs for span in r.phase_spans()), default=1)
    longest = max((len(r.history) for r in runs), default=0)
    for ax, (key, title, unit) in zip(axes.flat, panels):
        ends = [first - 0.5 for _, first in starts[1:]] + [last_epoch + 0.5]
        for k, ((name, first), end) in enumerate(zip(starts, ends)):
            if marks == "bands":
                ax.axvspan(first - 0.5, end, color="0.5", alpha=0.06 + 0.08 * (k % 2), gid="phase:band")
                where, align = (first - 0.5 + end) / 2, "center"
            elif marks == "shared" and k > 0:
                ax.axvline(first - 0.5, color="0.35", linestyle=":", linewidth=1.3, gid="phase:shared")
                where, align = first - 0.45, "left"
            else:
                continue
            ax.text(where, 0.99, name, transform=ax.get_xaxis_transform(), ha=align, va="top", fontsize=7)
        has_train = False
        for index, run in enumerate(runs):
            color, marker = run_style(index)
            for split, style in (("val", "-"), ("train", "--")):
                epochs, values = run.series(f"{split}/{key}")
                if not epochs:
                    continue
                has_train |= split == "train"
                (line,) = ax.plot(
                    epochs,
                    values,
                    linestyle=style,
                    color=color,
                    marker=marker if longest <= MARKER_MAX_EPOCHS else None,
                    markersize=3.5 if split == "val" else 2.5,
                    linewidth=1.5 if split == "val" else 1.1,
                    alpha=1.0 if split == "val" else 0.75,
                )
                line.set_gid(f"{split}:{index}")
            if marks == "per-run":
                for span in run.phase_spans()[1:]:
                    ax.axvline(
                        span.first_epoch - 0.5,
                        color=color,
                        linestyle=":",
                        linewidth=1.2,
                        alpha=0.8,
                        gid=f"phase:{index}",
                    )
        ax.set_title(title if has_train else f"{title} (validation only)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(first_epoch - 0.5, last_epoch + 0.5)  # whole epochs, even for a run of one
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()

    handles: list[Any] = [
        Line2D(
            [],
            [],
            color=run_style(i)[0],
            marker=run_style(i)[1],
            linewidth=1.5,
            label=label,
        )
        for i, label in enumerate(legend_labels[: len(runs)])
    ]
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="validation"),
        Line2D([], [], color="0.3", linestyle="--", label="training"),
    ]
    if marks == "bands":
        handles.append(Patch(color="0.5", alpha=0.2, label="phases (grey bands)"))
    elif marks == "shared":
        handles.append(Line2D([], [], color="0.35", linestyle=":", label="phase change (multi-phase runs)"))
    elif marks == "per-run":
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="phase change (run's colour)"))
    _bottom_legend(fig, handles, "runs", outside=False)
    fig.suptitle(suptitle, fontsize=12, y=1 - 0.12 / fig.get_figheight(), va="top")
    return fig


# ----------------------------------------------------------------------------------------------
# 9.2 training time


def _hues(runs: Sequence[RunRecord], fields: Sequence[str]) -> tuple[list[str], str]:
    """What tells runs of one network and weights apart (mode and blocks unfrozen, or any other varied
    field; else the mode), and a legend title naming those fields."""
    configs = [r.config for r in runs]
    shown = distinguishing_fields(configs, fields, within=("model", "weights"))
    labels = [series_label(c, shown) or mode_label(c) for c in configs]
    return labels, "colour: " + ", ".join(dict.fromkeys(_field_names(shown) or ["mode"]))


def _field_names(fields: Sequence[str]) -> list[str]:
    return ["mode (blocks unfrozen)" if f in ("mode", "unfreeze") else f for f in fields]


def _weights_order(runs: Sequence[RunRecord]) -> list[str]:
    """Weights labels, pretrained ones first, ``random`` last."""
    found = _ordered([weights_label(r.config.get("weights", "none")) for r in runs])
    return [w for w in found if w != "random"] + [w for w in found if w == "random"]


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _bar_label(ax, x: float, top: float, text: str, many: bool) -> None:
    ax.text(x, top, text, ha="center", va="bottom", fontsize=7, rotation=90 if many else 0)


def training_time_figure(runs: Sequence[RunRecord], fields: Sequence[str]) -> Figure:
    """Bars of training time (s; the phases' wall times stacked) — x: network, colour: what else tells
    the runs apart (mode and blocks unfrozen, or other varied fields), one panel per weights
    (pretrained ones first; shared y axis).

    A run's earlier phases (e.g. the head warm-up before fine-tuning) are hatched segments under its
    last phase. Each bar is labelled with its total. Bars carry ``gid`` ``"time:<run index>:<phase>"``.
    """
    timed = [(i, r) for i, r in enumerate(runs) if r.train_time_s is not None]
    if not timed:
        return text_figure("no training times: no run has a summary.json", 7.0)
    hue_labels, hue_title = _hues([r for _, r in timed], fields)
    hue_of = dict(zip((i for i, _ in timed), hue_labels))
    panels = _weights_order([r for _, r in timed])
    models = _ordered([_model_of(r) for _, r in timed])
    hues = _ordered(list(hue_of.values()))
    colors = _hue_colors(hues)
    per_panel = max(
        sum(1 for _, r in timed if weights_label(r.config.get("weights", "none")) == panel)
        for panel in panels
    )
    fig = _new_figure(max(6.5, max(4.5, 1.2 + 0.45 * per_panel + 0.5 * len(models)) * len(panels) + 0.5), 5.2)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    stacked = False
    for ax, panel in zip(axes, panels):
        in_panel = [(i, r) for i, r in timed if weights_label(r.config.get("weights", "none")) == panel]
        many = len(in_panel) > 8
        for m, model in enumerate(models):
            group = sorted(
                ((i, r) for i, r in in_panel if _model_of(r) == model),
                key=lambda item: hues.index(hue_of[item[0]]),
            )
            width = 0.8 / max(len(group), 1)
            for k, (index, run) in enumerate(group):
                x = m - 0.4 + width * (k + 0.5)
                color = colors[hue_of[index]]
                segments = [
                    (str(p.get("name")), float(p["wall_time_s"])) for p in run.phases if "wall_time_s" in p
                ]
                if not segments:
                    segments = [("run", float(run.train_time_s or 0.0))]
                bottom = 0.0
                for s, (phase, seconds) in enumerate(segments):
                    earlier = s < len(segments) - 1
                    stacked |= earlier
                    ax.bar(
                        x,
                        seconds,
                        width * 0.92,
                        bottom=bottom,
                        color=color,
                        hatch="///" if earlier else None,
                        edgecolor="white" if earlier else color,
                        linewidth=0.5,
                        gid=f"time:{index}:{phase}",
                    )
                    bottom += seconds
                _bar_label(ax, x, bottom, _seconds(bottom), many)
        _model_ticks(ax, models)
        ax.set_title(f"weights: {panel}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("training time (s, sum of phases)")
    top = max(r.train_time_s or 0.0 for _, r in timed)
    axes[0].set_ylim(0, top * 1.25 if top > 0 else 1.0)
    handles: list[Any] = [Patch(color=colors[h], label=_wrap(h, 30)) for h in hues]
    if stacked:
        handles.append(
            Patch(facecolor="0.6", hatch="///", edgecolor="white", label="earlier phase (head warm-up)")
        )
    _bottom_legend(fig, handles, hue_title, ncols=4)
    fig.suptitle("Training time per network and weights (9.2)", fontsize=12)
    return fig


def _model_ticks(ax, models: Sequence[str]) -> None:
    ax.set_xticks(range(len(models)), [short_label(m) for m in models], rotation=30 if len(models) > 4 else 0)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_xlabel("network")


# ----------------------------------------------------------------------------------------------
# 9.3 / 9.4 / 9.7 test accuracy


def _metric_title(metric: str) -> str:
    return {"accuracy": "test accuracy", "roc_auc": "test ROC-AUC", "f1_macro": "test F1 (macro)"}.get(
        metric, f"test {metric}"
    )


def accuracy_by_weights_figure(
    runs: Sequence[RunRecord], fields: Sequence[str], metric: str = "accuracy"
) -> Figure:
    """Test ``metric`` of the runs whose last phase trained every parameter (scratch, or fine-tuning
    with ``--unfreeze all``): x = network, colour = weights (pretrained vs random; with what else tells
    runs of one network and weights apart, if anything does). Runs with frozen parts are left out (the
    caption counts them; the unfrozen-blocks figure shows them). Bars carry ``gid`` ``"acc:<run index>"``.
    """
    chosen = [(i, r) for i, r in enumerate(runs) if r.trains_everything and metric in r.test_metrics]
    left_out = sum(1 for r in runs if r.test_metrics and not r.trains_everything)
    if not chosen:
        return text_figure(f"no finished run trained every layer: no {_metric_title(metric)} to compare", 8.0)
    configs = [r.config for _, r in chosen]
    shown = distinguishing_fields(configs, fields, within=("model", "weights"))
    rest = [series_label(c, shown) for c in configs]
    hue_of = {
        i: " · ".join(p for p in (weights_label(r.config.get("weights", "none")), extra) if p)
        for (i, r), extra in zip(chosen, rest)
    }
    hues = _ordered(list(hue_of.values()))
    hues = [h for h in hues if not h.startswith("random")] + [h for h in hues if h.startswith("random")]
    colors = _hue_colors(hues)
    models = _ordered([_model_of(r) for _, r in chosen])
    fig = _new_figure(max(5.5, 1.5 + 0.5 * len(chosen) + 0.5 * len(models)), 5.2)
    ax = fig.add_subplot()
    for m, model in enumerate(models):
        group = sorted(
            ((i, r) for i, r in chosen if _model_of(r) == model), key=lambda it: hues.index(hue_of[it[0]])
        )
        width = 0.8 / len(group)
        for k, (index, run) in enumerate(group):
            x = m - 0.4 + width * (k + 0.5)
            value = run.test_metrics[metric]
            ax.bar(x, value, width * 0.92, color=colors[hue_of[index]], gid=f"acc:{index}")
            _bar_label(ax, x, value, f"{value:.3f}", len(chosen) > 8)
    _model_ticks(ax, models)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(_metric_title(metric))
    ax.grid(axis="y", alpha=0.3)
    title = "colour: " + ", ".join(["weights", *dict.fromkeys(_field_names(shown))])
    _bottom_legend(fig, [Patch(color=colors[h], label=_wrap(h, 30)) for h in hues], title, ncols=4)
    caption = "every layer trained in the last phase (scratch, or fine-tuning with --unfreeze all)"
    if left_out:
        caption += f";\n{left_out} run(s) with frozen layers are not shown"
    ax.set_title(caption, fontsize=8)
    fig.suptitle(f"{_metric_title(metric).capitalize()}: pretrained vs random weights (9.3)", fontsize=12)
    return fig


def accuracy_by_unfrozen_figure(
    runs: Sequence[RunRecord], fields: Sequence[str], metric: str = "accuracy"
) -> Figure:
    """Test ``metric`` against the number of backbone blocks trained in the last phase (0 = the head
    only: ``--mode extract``), one line per network (and whatever else tells runs apart), one panel per
    weights (pretrained first). Runs without a backbone/head split (``--mode scratch``) have no such
    number and are left out. Lines carry ``gid`` ``"unfrozen:<series>"``.
    """
    chosen = [r for r in runs if r.unfrozen_blocks is not None and metric in r.test_metrics]
    if not chosen:
        return text_figure(
            "no finished run froze part of a backbone (--mode extract or finetune): nothing to plot", 8.5
        )
    rest = group_labels([r.config for r in chosen], fields, within=("model", "weights", "mode", "unfreeze"))
    series = [" · ".join(p for p in (_model_of(r), extra) if p) for r, extra in zip(chosen, rest)]
    names = _ordered(series)
    colors = _hue_colors(names)
    panels = _weights_order(chosen)
    fig = _new_figure(max(6.0, 4.8 * len(panels) + 0.6), 5.0)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    most = max(int(r.unfrozen_blocks or 0) for r in chosen)
    for ax, panel in zip(axes, panels):
        for name in names:
            points = sorted(
                (r.unfrozen_blocks, r.test_metrics[metric])
                for r, s in zip(chosen, series)
                if s == name and weights_label(r.config.get("weights", "none")) == panel
            )
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", color=colors[name], linewidth=1.5, gid=f"unfrozen:{name}")
            offset = (0, 5) if names.index(name) % 2 == 0 else (0, -11)  # neighbours' labels apart
            for x, y in points:
                ax.annotate(
                    f"{y:.3f}", (x, y), textcoords="offset points", xytext=offset, ha="center", fontsize=7
                )
        ax.set_title(f"weights: {panel}", fontsize=10)
        ax.set_xlabel("backbone blocks trained (0 = head only)")
        ax.set_xlim(-0.5, most + 0.5)
        ax.set_xticks(range(most + 1))
        ax.set_ylim(0, 1.08)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_metric_title(metric))
    handles = [Line2D([], [], color=colors[n], marker="o", label=_wrap(n, 30)) for n in names]
    _bottom_legend(fig, handles, "network", ncols=4)
    fig.suptitle(f"{_metric_title(metric).capitalize()} by number of unfrozen blocks (9.4)", fontsize=12)
    return fig


def metrics_heatmap_figure(
    runs: Sequence[RunRecord], fields: Sequence[str], metric: str = "accuracy"
) -> Figure:
    """The table at a glance (9.7): networks across, what else tells runs apart (weights, mode, blocks...)
    down; each cell the test ``metric`` and the training time. Several runs in one cell (same settings)
    show their mean and count. Empty cells: no such run. ``fig.axes[0].images[0]`` holds the values."""
    done = [r for r in runs if metric in r.test_metrics]
    if not done:
        return text_figure(f"no finished run has a {_metric_title(metric)}", 7.0)
    models = _ordered([_model_of(r) for r in done])
    row_of = [
        label or mode_label(r.config)
        for r, label in zip(done, group_labels([r.config for r in done], fields, within=("model",)))
    ]
    rows = _ordered(row_of)
    cells: dict[tuple[int, int], list[RunRecord]] = {}
    for run, row in zip(done, row_of):
        cells.setdefault((rows.index(row), models.index(_model_of(run))), []).append(run)
    values = np.full((len(rows), len(models)), np.nan)
    for (r, c), members in cells.items():
        values[r, c] = float(np.mean([m.test_metrics[metric] for m in members]))
    fig = _new_figure(max(5.0, 3.4 + 1.3 * len(models)), max(2.8, 1.5 + 0.5 * len(rows)))
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=low, vmax=high, aspect="auto")
    fig.colorbar(image, ax=ax, label=_metric_title(metric), shrink=0.9)
    for (r, c), members in cells.items():
        seconds = [m.train_time_s for m in members if m.train_time_s is not None]
        text = f"{values[r, c]:.3f}"
        text += f"\n{_seconds(float(np.mean(seconds)))}" if seconds else ""
        text += f" ×{len(members)}" if len(members) > 1 else ""
        dark = high == low or (values[r, c] - low) / (high - low) < 0.6
        ax.text(c, r, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    _model_ticks(ax, models)
    ax.set_yticks(range(len(rows)), [_wrap(r, 34) for r in rows], fontsize=8)
    ax.set_title(f"{_metric_title(metric).capitalize()} and training time per run (9.7)", fontsize=11)
    return fig


# ----------------------------------------------------------------------------------------------
# 9.5 / 9.6 confusion matrices


def confusion_grid_figure(
    items: Sequence[tuple[str, Sequence[Sequence[int]], Sequence[str] | None]], split: str
) -> Figure:
    """A grid of confusion matrices, one per ``(label, matrix, class names)``: rows true classes,
    columns predicted, colour the row-normalised fraction (recall on the diagonal), counts in the
    cells up to :data:`GRID_CELL_TEXT_MAX` classes, accuracy and sample count in each title."""
    if not items:
        return text_figure(f"no {split} confusion matrix in any run folder", 7.0)
    n = len(items)
    ncols = min(4, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    fig = _new_figure(3.3 * ncols + 1.2, 3.5 * nrows + 0.7)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= n:
            ax.set_axis_off()
            continue
        label, matrix, names = items[index]
        cm = np.asarray(matrix, dtype=np.int64)
        k = cm.shape[0]
        rows = cm.sum(axis=1, keepdims=True)
        frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
        image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        total = int(cm.sum())
        accuracy = np.trace(cm) / total if total else float("nan")
        ax.set_title(f"{_wrap(label, 42)}\naccuracy {accuracy:.3f}, n = {total}", fontsize=8)
        tick_names = [short_label(str(c), 10) for c in (names if names and len(names) == k else range(k))]
        size = float(np.clip(120 / (k * ncols**0.5), 4.0, 8.0))
        if k <= 12:
            ax.set_xticks(range(k), tick_names, rotation=90, fontsize=size)
            ax.set_yticks(range(k), tick_names, fontsize=size)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if k <= GRID_CELL_TEXT_MAX:
            cell = float(np.clip(110 / (k * ncols**0.5), 4.0, 10.0))
            for i in range(k):
                for j in range(k):
                    if cm[i, j] or i == j:
                        color = "white" if frac[i, j] > 0.5 else "black"
                        ax.text(
                            j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=cell, color=color
                        )
        if index % ncols == 0:
            ax.set_ylabel("true class", fontsize=8)
        if index >= n - ncols:
            ax.set_xlabel("predicted class", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="fraction of the true class")
    fig.suptitle(
        f"Confusion matrices on the {split} split (9.5/9.6): colour = row-normalised, numbers = counts",
        fontsize=11,
    )
    return fig
