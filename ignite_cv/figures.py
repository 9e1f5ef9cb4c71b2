"""Matplotlib figures for reports and TensorBoard, drawn without pyplot.

Why no pyplot: pyplot keeps global figure state and picks a GUI backend, which leaks memory in long runs and
breaks on headless machines and in worker threads. Every figure here is a bare
:class:`matplotlib.figure.Figure` attached to the non-interactive Agg canvas; nothing global is touched,
and a figure is freed like any Python object. Save with :func:`save_figure` (atomic); TensorBoard gets the
PNG file itself (:func:`ignite_cv.handlers.tensorboard.log_png`: ``SummaryWriter.add_figure`` would draw
the figure a second time, and import pyplot to do it). The report's figures have fixed margins
(:func:`fixed_margins`), set once from what they show, instead of constrained layout.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ignite_cv.utils.atomic import atomic_open

__all__ = [
    "confusion_matrix_figure",
    "precision_recall_figure",
    "roc_figure",
    "save_figure",
    "short_label",
    "text_figure",
]

#: Above this many classes the confusion matrix shows colour only: per-cell numbers would be unreadable.
CELL_TEXT_MAX_CLASSES = 20
#: Tick labels longer than this are shortened with an ellipsis.
MAX_LABEL_CHARS = 24
#: Above this many curves the ROC legend is dropped (the per-class AUCs are in roc.json).
ROC_LEGEND_MAX_CURVES = 20


def _new_figure(
    width_in: float, height_in: float, dpi: int = 100, layout: str | None = "constrained"
) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def text_inches(chars: int, size_pt: float) -> float:
    """About how wide ``chars`` characters of DejaVu Sans at ``size_pt`` points are, in inches (0.62 em
    each: digits and lower case are narrower, capitals wider)."""
    return chars * size_pt * 0.62 / 72.0


def fixed_margins(
    fig: Figure, left: float, right: float, bottom: float, top: float, **spacing: float
) -> None:
    """Margins in inches, set once (``subplots_adjust``): for the report's figures, whose content is known
    before drawing. Constrained layout measures every text at each drawing, and was about 40 % of the time
    of a run's report figures (0.4 of 1.2 s on the digits run); ``spacing``: ``wspace``/``hspace``."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height, **spacing
    )


def short_label(name: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Shorten a class name for a tick label or title: at most ``limit`` characters, ``…`` when cut."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def confusion_matrix_figure(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Confusion matrix: rows are true classes, columns predicted; colour is the row-normalised fraction.

    Colour = count / number of samples of that true class (per-class recall on the diagonal), so rare
    classes are as visible as common ones; a class with no samples gets an empty (white) row. Cells show
    the raw count (and the row percentage) when there are at most :data:`CELL_TEXT_MAX_CLASSES` classes;
    above that the figure is colour only, with smaller tick labels, so 100 classes stay legible.
    """
    cm = np.asarray(cm)
    n = len(class_names)
    if cm.ndim != 2 or cm.shape != (n, n):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {n} class names")
    row_sums = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, row_sums, out=np.zeros(cm.shape, dtype=np.float64), where=row_sums > 0)

    side = float(np.clip(1.5 + 0.55 * n, 4.5, 18.0))
    cell_points = side * 72.0 * 0.8 / n  # rough height of one cell in points
    label_size = float(np.clip(0.6 * cell_points, 4.0, 10.0))
    labels = [short_label(str(name)) for name in class_names]
    longest = text_inches(max(len(label) for label in labels), label_size)
    below = longest if n > 6 else 0.72 * longest + 0.1  # x tick labels at 90° or 45°
    left, bottom, right, top = 0.45 + longest, 0.5 + below, 1.2, 0.45
    width, height = side + 1.2 + max(0.0, longest - 0.5), side + max(0.0, below - 0.5)
    fig = _new_figure(width, height, layout=None)
    fixed_margins(fig, left=left, right=right, bottom=bottom, top=top)
    ax = fig.add_subplot()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    square = min(width - left - right, height - bottom - top)  # the image's side, in inches
    colorbar_axes = ax.inset_axes((1 + 0.15 / square, 0.0, 0.22 / square, 1.0))  # 0.15 in beside the image
    fig.colorbar(image, cax=colorbar_axes, label="fraction of the true class")

    ax.set_xticks(range(n), labels, rotation=90 if n > 6 else 45, ha="center" if n > 6 else "right")
    ax.set_yticks(range(n), labels)
    ax.tick_params(labelsize=label_size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix (n = {int(cm.sum())})")

    if n <= CELL_TEXT_MAX_CLASSES:
        cell_size = float(np.clip(140.0 / n, 5.0, 11.0))
        for i in range(n):
            for j in range(n):
                if cm[i, j] == 0 and i != j:
                    continue
                text = f"{int(cm[i, j])}\n{100 * frac[i, j]:.0f}%" if n <= 10 else f"{int(cm[i, j])}"
                color = "white" if frac[i, j] > 0.5 else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=cell_size)
    return fig


def roc_figure(curves: dict[str, Any]) -> Figure:
    """ROC curves from :func:`ignite_cv.roc.roc_curves`'s dict: one line per class, chance diagonal.

    The title carries the overall AUC (binary, or macro one-vs-rest); legend entries carry each class's AUC
    (dropped above :data:`ROC_LEGEND_MAX_CURVES` curves). With no curve (a single class in the labels) the
    figure says why instead of being blank.
    """
    per_class = curves.get("curves", {})
    fig = _new_figure(6.5, 6.0, layout=None)
    fixed_margins(fig, left=0.75, right=0.25, bottom=0.6, top=0.45)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    many = len(per_class) > 10
    cmap = None if len(per_class) <= 10 else ("tab20" if len(per_class) <= 20 else "viridis")
    for index, (name, curve) in enumerate(per_class.items()):
        color = None if cmap is None else colormaps[cmap](index / max(len(per_class) - 1, 1))
        ax.plot(
            curve["fpr"],
            curve["tpr"],
            linewidth=0.8 if many else 1.8,
            alpha=0.7 if many else 1.0,
            color=color,
            label=f"{short_label(str(name))} (AUC {curve['auc']:.3f})",
        )
    auc = curves.get("auc")
    kind = "macro one-vs-rest AUC" if curves.get("average") == "macro_ovr" else "AUC"
    auc_text = "undefined" if auc is None or not math.isfinite(auc) else f"{auc:.4f}"
    ax.set_title(f"ROC ({kind} = {auc_text})")
    if not per_class:
        ax.text(0.5, 0.35, "no ROC curve: the labels need\nboth positives and negatives", ha="center")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.grid(alpha=0.3)
    if len(per_class) <= ROC_LEGEND_MAX_CURVES:
        ax.legend(loc="lower right", fontsize=8 if len(per_class) <= 10 else 6)
    else:
        ax.text(
            0.98,
            0.03,
            f"{len(per_class)} one-vs-rest curves; per-class AUCs in roc.json",
            ha="right",
            va="bottom",
            fontsize=8,
            transform=ax.transAxes,
        )
    return fig


def precision_recall_figure(
    curve: dict[str, Any], positive: str, operating: dict[str, Any] | None = None
) -> Figure:
    """The precision-recall curve of ``positive`` from :func:`ignite_cv.binary.precision_recall`'s dict,
    with the chance level (the positives' share) and, given ``operating`` (the metrics at the decision
    threshold), the point where the model decides."""
    fig = _new_figure(6.5, 6.0, layout=None)
    fixed_margins(fig, left=0.75, right=0.25, bottom=0.6, top=0.45)
    ax = fig.add_subplot()
    n, positives = curve.get("n", 0), curve.get("positives", 0)
    if n:
        ax.axhline(
            positives / n, linestyle="--", color="grey", linewidth=1, label=f"chance ({positives}/{n})"
        )
    ap = curve.get("average_precision")
    if curve.get("recall"):
        ax.step(curve["recall"], curve["precision"], where="post", linewidth=1.8, label=short_label(positive))
    else:
        ax.text(0.5, 0.5, "no precision-recall curve:\nthe labels hold no positive", ha="center")
    if operating is not None and operating.get("ppv") is not None and math.isfinite(operating["ppv"]):
        ax.plot(
            [operating["sensitivity"]],
            [operating["ppv"]],
            marker="o",
            color="red",
            linestyle="none",
            label=f"threshold {operating['threshold']:.3g}",
        )
    ap_text = "undefined" if ap is None else f"{ap:.4f}"
    ax.set_title(f"Precision-recall of {short_label(positive)} (AP = {ap_text})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (PPV)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def text_figure(text: str, width_in: float = 6.0, height_in: float = 1.5) -> Figure:
    """A small figure showing one message: a visible placeholder where a plot would be empty."""
    fig = _new_figure(width_in, height_in)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
    return fig


def save_figure(
    fig: Figure, path: str | os.PathLike[str], dpi: int = 100, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``fig`` to ``path`` atomically (:func:`ignite_cv.utils.atomic.atomic_open`).

    A reader (TensorBoard, a browser, a crash) never sees a half-written image. The format follows the
    suffix (``.png``, ``.pdf``, ``.svg``...). Missing parent folders are created. ``metadata``: text
    entries of the file (PNG ``tEXt`` chunks, e.g. ``{"Description": ...}``). Returns the path.
    """
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    # PNG at zlib level 1, as image_grid.write_png: 3x faster to encode than level 6, ~1.3x larger.
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    with atomic_open(target, "wb") as handle:
        fig.savefig(handle, format=fmt, dpi=dpi, metadata=metadata, **extra)
    return target
