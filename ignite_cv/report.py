"""The test report: confusion matrix, classification report, ROC curves and the worst mistakes, on disk and
in TensorBoard.

Everything is computed from the caller's ``(y_true, probs)`` for one split, so every number in the report
comes from the same predictions: the predicted class is ``argmax(probs)`` (ties go to the lower index) or,
for two classes, the positive class (index 1) when ``probs[:, 1] >= threshold`` (default 0.5; the rule
of :mod:`ignite_cv.inference.decision`), the
ROC-AUC is :func:`ignite_cv.roc.roc_auc` (the function the training metric uses, so ``roc.json``'s
``"auc"`` equals the reported test ROC-AUC), and precision/recall/F1 are those of sklearn's
``classification_report(..., labels=range(C), zero_division=0)``, dict and text table alike, computed
here from the confusion matrix (:func:`classification_scores`, :func:`classification_text`): importing
``sklearn.metrics`` (SciPy, pandas) cost about 1.1 s of every run, for a dozen lines of arithmetic.
The tests check both against scikit-learn.

Files written into ``out_dir`` (each atomically, through :mod:`ignite_cv.utils.atomic`):

=============================  ====================================================================
``confusion_matrix.csv``       counts; header row and first column are class names; rows = true class
``confusion_matrix.png``       counts + row-normalised colour (:func:`figures.confusion_matrix_figure`)
``classification_report.json`` per-class precision, recall, f1, support; accuracy; macro/weighted avg
``classification_report.txt``  the same as a fixed-width table, plus the ROC-AUC line
``roc.json`` / ``roc.png``     :func:`ignite_cv.roc.roc_curves` (compact one-line JSON) and its plot
``pr.json`` / ``pr.png``       two classes: :func:`ignite_cv.binary.precision_recall` of the positive
                               class (average precision) and its plot, with the threshold's point
``most_confident_wrong.png``   up to ``max_wrong`` wrong predictions with the highest predicted-class
                               probability, titled ``"pred (p=0.97) / true"`` (names cut to 16
                               characters); when every prediction
                               is right, a placeholder image saying so (the file set stays fixed)
``report.json``                the summary returned by :func:`write_test_report`
=============================  ====================================================================

Two classes add, in ``report.json`` and the text table, the threshold and the metrics at it
(:func:`ignite_cv.binary.metrics_at_threshold`: sensitivity, specificity, PPV, NPV, balanced accuracy)
and the average precision.

``most_confident_wrong.png`` needs the images; with ``images=None`` it is not written (and a stale one from
an earlier report in the same folder is removed, so the folder never shows another run's mistakes).

Averages follow sklearn with ``zero_division=0``: a class with no test samples has support 0, recall 0 and
F1 0 and still counts in the macro average (it shows in the per-class table); a class never predicted has
precision 0.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ignite_cv.binary import DEFAULT_THRESHOLD, metrics_at_threshold, precision_recall
from ignite_cv.figures import (
    confusion_matrix_figure,
    precision_recall_figure,
    roc_figure,
    save_figure,
    short_label,
)
from ignite_cv.handlers.tensorboard import log_png
from ignite_cv.image_grid import labelled_grid, message_picture, write_png
from ignite_cv.roc import roc_curves, to_label_array, to_prob_array
from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
from ignite_cv.utils.errors import UserError

__all__ = ["BINARY_REPORT_FILES", "REPORT_FILES", "write_test_report"]

#: Cells of ``most_confident_wrong.png``: small images enlarged pixel-exact to 96 px, large ones reduced to
#: 160 px; titles in 11-pixel DejaVu Sans.
WRONG_GRID_CELLS = {"min_cell": 96, "max_cell": 160, "font_size": 11}

#: File names :func:`write_test_report` writes (``most_confident_wrong.png`` only when images are given).
REPORT_FILES = (
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "classification_report.json",
    "classification_report.txt",
    "roc.json",
    "roc.png",
    "most_confident_wrong.png",
    "report.json",
)
#: What a two-class report writes besides :data:`REPORT_FILES`.
BINARY_REPORT_FILES = ("pr.json", "pr.png")

_WRONG_FILE = "most_confident_wrong.png"


def _confusion_csv(cm: np.ndarray, names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, cm):
        writer.writerow([name, *(int(v) for v in row)])
    return buffer.getvalue()


def confusion_counts(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted (sklearn's ``confusion_matrix``
    with ``labels=range(C)``)."""
    return np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (sklearn's ``zero_division=0``)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def classification_scores(cm: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, accuracy, and macro and support-weighted averages
    of a confusion matrix, as sklearn's ``precision_recall_fscore_support(..., zero_division=0)``
    defines them: precision tp/(tp+fp), recall tp/(tp+fn), F1 2tp/(2tp+fp+fn), each 0 where its
    denominator is 0. Per-class values are arrays (index = class)."""
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    per_class = {
        "precision": _ratio(tp, predicted.astype(np.float64)),
        "recall": _ratio(tp, support.astype(np.float64)),
        "f1": _ratio(2 * tp, (support + predicted).astype(np.float64)),
    }
    total = int(support.sum())
    weights = support.astype(np.float64)
    weighted = {k: float(np.average(v, weights=weights)) if total else 0.0 for k, v in per_class.items()}
    return {
        **per_class,
        "support": support,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_avg": {**{k: float(np.mean(v)) for k, v in per_class.items()}, "support": total},
        "weighted_avg": {**weighted, "support": total},
    }


def classification_text(scores: dict[str, Any], names: Sequence[str], digits: int = 4) -> str:
    """The fixed-width table of sklearn's ``classification_report(..., target_names=names)``."""
    width = max(max(len(n) for n in names), len("weighted avg"), digits)
    headers = ("precision", "recall", "f1-score", "support")
    text = ("{:>{width}s} " + " {:>9}" * 4).format("", *headers, width=width) + "\n\n"
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for k, name in enumerate(names):
        values = (scores["precision"][k], scores["recall"][k], scores["f1"][k], int(scores["support"][k]))
        text += row.format(name, *values, width=width, digits=digits)
    text += "\n"
    total = scores["macro_avg"]["support"]
    accuracy_row = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
    text += accuracy_row.format("accuracy", "", "", scores["accuracy"], total, width=width, digits=digits)
    for heading, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        avg = scores[key]
        text += row.format(
            heading, avg["precision"], avg["recall"], avg["f1"], total, width=width, digits=digits
        )
    return text


def _classification_dict(scores: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The scores keyed by class name (labels fixed to all C classes)."""

    def entry(k: int) -> dict[str, float | int]:
        values = {m: float(scores[m][k]) for m in ("precision", "recall", "f1")}
        return {**values, "support": int(scores["support"][k])}

    return {
        "classes": {name: entry(k) for k, name in enumerate(names)},
        "accuracy": scores["accuracy"],
        "macro_avg": scores["macro_avg"],
        "weighted_avg": scores["weighted_avg"],
        "zero_division": 0,
    }


def _most_confident_wrong(
    y: np.ndarray, probs: np.ndarray, pred: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of wrong predictions, highest predicted-class probability first (ties: lower index first)."""
    wrong = np.flatnonzero(pred != y)
    confidence = probs[wrong, pred[wrong]]
    order = np.argsort(-confidence, kind="stable")[: max(limit, 0)]
    return wrong[order], confidence[order]


_BINARY_KEYS = ("threshold", "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy")


def _binary_text(positive: str, metrics: dict[str, Any], average_precision: float | None) -> str:
    def show(value: float | None) -> str:
        return "undefined" if value is None or value != value else f"{value:.4f}"

    return (
        f"\npositive class {positive!r}, called at P >= {metrics['threshold']:.4g}: "
        f"sensitivity {show(metrics['sensitivity'])}, specificity {show(metrics['specificity'])}, "
        f"PPV {show(metrics['ppv'])}, NPV {show(metrics['npv'])}, "
        f"balanced accuracy {show(metrics['balanced_accuracy'])}\n"
        f"average precision: {show(average_precision)}\n"
    )


def write_test_report(
    out_dir: str | os.PathLike[str],
    y_true: np.ndarray | torch.Tensor,
    probs: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    images: np.ndarray | torch.Tensor | None = None,
    tb_writer: Any = None,
    global_step: int = 0,
    split_name: str = "test",
    max_wrong: int = 16,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Write the report files for one split into ``out_dir`` (created) and optionally to TensorBoard.

    ``y_true``: ``(N,)`` class indices; ``probs``: ``(N, C)`` probabilities (a 1-logit binary model passes
    ``[1 - p, p]``); ``class_names``: C distinct names; ``images``: the same N samples as uint8
    ``(N, C, H, W)`` (grey or RGB, before normalisation) or None. ``tb_writer``: a ``SummaryWriter``; the
    figures go to ``<split_name>/confusion_matrix``, ``<split_name>/roc`` and
    ``<split_name>/most_confident_wrong`` and the table to ``<split_name>/classification_report`` (text).
    ``threshold``: two classes only, P(class 1) at and above which class 1 is predicted (None: 0.5).

    Returns the summary also written to ``report.json``: ``split``, ``n``, ``num_classes``, ``accuracy``,
    ``macro_f1``, ``weighted_f1``, ``roc_auc`` (NaN in the dict and null in the JSON when undefined),
    ``roc_auc_average`` (``"binary"`` or ``"macro_ovr"``), ``num_wrong`` and ``files``; for two classes
    also ``positive_class``, ``threshold``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``,
    ``balanced_accuracy`` and ``average_precision``.
    """
    y = to_label_array(y_true)
    p = to_prob_array(probs)
    names = [str(n) for n in class_names]
    num_classes = p.shape[1]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} probability columns")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be distinct, got {names}")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} samples but probs has {p.shape[0]} rows")
    if y.shape[0] == 0:
        raise UserError(
            f"the {split_name} split is empty, so there is nothing to report",
            "use more data or a larger split fraction",
        )
    if images is not None and len(images) != y.shape[0]:
        raise ValueError(f"{len(images)} images for {y.shape[0]} labels")
    binary = num_classes == 2
    if threshold is not None and not binary:
        raise ValueError("a decision threshold is for two classes")
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)

    # Computed first: roc_curves also checks the label range, so a bad call writes nothing.
    curves = roc_curves(y, p, names)
    roc_value = float("nan") if curves["auc"] is None else float(curves["auc"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = (p[:, 1] >= threshold).astype(np.int64) if binary else p.argmax(axis=1)
    n = int(y.shape[0])

    # Confusion matrix (rows = true class) — counts sum to n by construction.
    cm = confusion_counts(y, pred, num_classes)
    write_text_atomic(out / "confusion_matrix.csv", _confusion_csv(cm, names))
    cm_fig = confusion_matrix_figure(cm, names)
    save_figure(cm_fig, out / "confusion_matrix.png")

    # Classification report.
    scores = classification_scores(cm)
    report = {"split": split_name, "n": n, **_classification_dict(scores, names)}
    write_json_atomic(out / "classification_report.json", report, strict=True)
    roc_kind = "binary, probability of class 1" if curves["average"] == "binary" else "macro one-vs-rest"
    text = (
        f"{split_name}: {n} samples, {num_classes} classes\n\n"
        + classification_text(scores, names, digits=4)
        + f"\nROC-AUC ({roc_kind}): {roc_value:.4f}\n"
    )
    at_threshold: dict[str, Any] = {}
    if binary:
        at_threshold = metrics_at_threshold(y, p[:, 1], threshold)
        pr = precision_recall(y, p[:, 1])
        text += _binary_text(names[1], at_threshold, pr["average_precision"])
        write_json_atomic(out / "pr.json", pr, strict=True, compact=True)
        pr_fig = precision_recall_figure(pr, names[1], at_threshold)
        save_figure(pr_fig, out / "pr.png")
    write_text_atomic(out / "classification_report.txt", text)

    # ROC.
    write_json_atomic(out / "roc.json", curves, strict=True, compact=True)
    roc_fig = roc_figure(curves)
    save_figure(roc_fig, out / "roc.png")

    # Most confidently wrong.
    wrong_idx, wrong_conf = _most_confident_wrong(y, p, pred, max_wrong)
    num_wrong = int((pred != y).sum())
    wrong_picture = None
    if images is not None:
        if len(wrong_idx) == 0:
            wrong_picture = message_picture(
                f"no wrong predictions to show ({n - num_wrong}/{n} correct)"
                if num_wrong == 0
                else "max_wrong is 0: no images requested"
            )
        else:
            selected = (
                images[torch.as_tensor(wrong_idx)] if isinstance(images, torch.Tensor) else images[wrong_idx]
            )
            titles = [
                f"{short_label(names[pred[i]], 16)} (p={c:.2f}) / {short_label(names[y[i]], 16)}"
                for i, c in zip(wrong_idx.tolist(), wrong_conf.tolist())
            ]
            wrong_picture = labelled_grid(
                selected, titles, [False] * len(titles), ncols=8, **WRONG_GRID_CELLS
            )
        write_png(out / _WRONG_FILE, wrong_picture)
    else:
        (out / _WRONG_FILE).unlink(missing_ok=True)

    summary: dict[str, Any] = {
        "split": split_name,
        "n": n,
        "num_classes": num_classes,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_avg"]["f1"],
        "weighted_f1": report["weighted_avg"]["f1"],
        "roc_auc": roc_value,
        "roc_auc_average": curves["average"],
        "num_wrong": num_wrong,
        "files": [f for f in REPORT_FILES if f != _WRONG_FILE or images is not None]
        + (list(BINARY_REPORT_FILES) if binary else []),
    }
    if binary:
        summary["positive_class"] = names[1]
        summary.update({k: at_threshold[k] for k in _BINARY_KEYS})
        summary["average_precision"] = pr["average_precision"]
    write_json_atomic(out / "report.json", summary, strict=True)

    if tb_writer is not None:
        # The pixels save_figure drew for the PNGs (add_figure would draw each figure again).
        # The PNGs as written: TensorBoard shows the report's own pixels, encoded once.
        pngs = {"confusion_matrix": "confusion_matrix.png", "roc": "roc.png"}
        if wrong_picture is not None:
            pngs["most_confident_wrong"] = _WRONG_FILE
        if binary:
            pngs["precision_recall"] = "pr.png"
        for name, file in pngs.items():
            log_png(tb_writer, f"{split_name}/{name}", out / file, global_step)
        # Indented lines render as a fixed-width code block in TensorBoard's markdown text tab.
        tb_writer.add_text(
            f"{split_name}/classification_report",
            "\n".join("    " + line for line in text.splitlines()),
            global_step,
        )
    return summary
