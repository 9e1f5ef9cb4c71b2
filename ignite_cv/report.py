"""The test report: confusion matrix, classification report, ROC curves and the worst mistakes, on disk and
in TensorBoard.

Everything is computed from the caller's ``(y_true, probs)`` for one split, so every number in the report
comes from the same predictions: the predicted class is ``argmax(probs)`` (ties go to the lower index), the
ROC-AUC is :func:`ignite_cv.roc.roc_auc` (the function the training metric uses, so ``roc.json``'s
``"auc"`` equals the reported test ROC-AUC), and precision/recall/F1 are sklearn's
``classification_report(..., labels=range(C), zero_division=0)``.

Files written into ``out_dir`` (each atomically: temp file in the same folder, then ``os.replace``):

=============================  ====================================================================
``confusion_matrix.csv``       counts; header row and first column are class names; rows = true class
``confusion_matrix.png``       counts + row-normalised colour (:func:`figures.confusion_matrix_figure`)
``classification_report.json`` per-class precision, recall, f1, support; accuracy; macro/weighted avg
``classification_report.txt``  the same as a fixed-width table, plus the ROC-AUC line
``roc.json`` / ``roc.png``     :func:`ignite_cv.roc.roc_curves` (compact one-line JSON) and its plot
``most_confident_wrong.png``   up to ``max_wrong`` wrong predictions with the highest predicted-class
                               probability, titled ``"pred (p=0.97) / true"`` (names cut to 16
                               characters); when every prediction
                               is right, a placeholder image saying so (the file set stays fixed)
``report.json``                the summary returned by :func:`write_test_report`
=============================  ====================================================================

``most_confident_wrong.png`` needs the images; with ``images=None`` it is not written (and a stale one from
an earlier report in the same folder is removed, so the folder never shows another run's mistakes).

Averages follow sklearn with ``zero_division=0``: a class with no test samples has support 0, recall 0 and
F1 0 and still counts in the macro average (it shows in the per-class table); a class never predicted has
precision 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report, confusion_matrix

from ignite_cv.figures import (
    FILE_MODE,
    confusion_matrix_figure,
    figure_rgb,
    image_grid_figure,
    roc_figure,
    save_figure,
    short_label,
    text_figure,
)
from ignite_cv.roc import roc_curves, to_label_array, to_prob_array
from ignite_cv.utils.errors import UserError

__all__ = ["REPORT_FILES", "write_test_report"]

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

_WRONG_FILE = "most_confident_wrong.png"


def _write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text via a temp file in the same folder and ``os.replace``: readers never see half."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _json_safe(value: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python: strict JSON (``allow_nan=False``) for any reader."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json_atomic(path: Path, obj: Any, compact: bool = False) -> None:
    """Strict JSON; ``compact`` (one line) for long point lists such as ROC curves, indented otherwise."""
    options: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    _write_text_atomic(path, json.dumps(_json_safe(obj), allow_nan=False, **options) + "\n")


def _confusion_csv(cm: np.ndarray, names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, cm):
        writer.writerow([name, *(int(v) for v in row)])
    return buffer.getvalue()


def _scores(entry: dict[str, float]) -> dict[str, float | int]:
    return {
        "precision": float(entry["precision"]),
        "recall": float(entry["recall"]),
        "f1": float(entry["f1-score"]),
        "support": int(entry["support"]),
    }


def _classification_dict(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """sklearn's report keyed by class name, with "f1" for "f1-score" (labels fixed to all C classes)."""
    labels = list(range(len(names)))
    raw = classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    return {
        "classes": {name: _scores(raw[str(k)]) for k, name in zip(labels, names)},
        "accuracy": float(raw["accuracy"]),
        "macro_avg": _scores(raw["macro avg"]),
        "weighted_avg": _scores(raw["weighted avg"]),
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
) -> dict[str, Any]:
    """Write the report files for one split into ``out_dir`` (created) and optionally to TensorBoard.

    ``y_true``: ``(N,)`` class indices; ``probs``: ``(N, C)`` probabilities (a 1-logit binary model passes
    ``[1 - p, p]``); ``class_names``: C distinct names; ``images``: the same N samples as uint8
    ``(N, C, H, W)`` (grey or RGB, before normalisation) or None. ``tb_writer``: a ``SummaryWriter``; the
    figures go to ``<split_name>/confusion_matrix``, ``<split_name>/roc`` and
    ``<split_name>/most_confident_wrong`` and the table to ``<split_name>/classification_report`` (text).

    Returns the summary also written to ``report.json``: ``split``, ``n``, ``num_classes``, ``accuracy``,
    ``macro_f1``, ``weighted_f1``, ``roc_auc`` (NaN in the dict and null in the JSON when undefined),
    ``roc_auc_average`` (``"binary"`` or ``"macro_ovr"``), ``num_wrong`` and ``files``.
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

    # Computed first: roc_curves also checks the label range, so a bad call writes nothing.
    curves = roc_curves(y, p, names)
    roc_value = float("nan") if curves["auc"] is None else float(curves["auc"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = p.argmax(axis=1)
    n = int(y.shape[0])

    # Confusion matrix (rows = true class) — counts sum to n by construction.
    cm = confusion_matrix(y, pred, labels=list(range(num_classes)))
    _write_text_atomic(out / "confusion_matrix.csv", _confusion_csv(cm, names))
    cm_fig = confusion_matrix_figure(cm, names)
    save_figure(cm_fig, out / "confusion_matrix.png")

    # Classification report.
    report = {"split": split_name, "n": n, **_classification_dict(y, pred, names)}
    _write_json_atomic(out / "classification_report.json", report)
    roc_kind = "binary, probability of class 1" if curves["average"] == "binary" else "macro one-vs-rest"
    text = (
        f"{split_name}: {n} samples, {num_classes} classes\n\n"
        + classification_report(
            y, pred, labels=list(range(num_classes)), target_names=names, digits=4, zero_division=0
        )
        + f"\nROC-AUC ({roc_kind}): {roc_value:.4f}\n"
    )
    _write_text_atomic(out / "classification_report.txt", text)

    # ROC.
    _write_json_atomic(out / "roc.json", curves, compact=True)
    roc_fig = roc_figure(curves)
    save_figure(roc_fig, out / "roc.png")

    # Most confidently wrong.
    wrong_idx, wrong_conf = _most_confident_wrong(y, p, pred, max_wrong)
    num_wrong = int((pred != y).sum())
    wrong_fig = None
    if images is not None:
        if len(wrong_idx) == 0:
            wrong_fig = text_figure(
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
            wrong_fig = image_grid_figure(selected, titles, ["red"] * len(titles), ncols=8)
        save_figure(wrong_fig, out / _WRONG_FILE)
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
        "files": [f for f in REPORT_FILES if f != _WRONG_FILE or images is not None],
    }
    _write_json_atomic(out / "report.json", summary)

    if tb_writer is not None:
        # The pixels save_figure drew for the PNGs (add_figure would draw each figure again).
        figures = {"confusion_matrix": cm_fig, "roc": roc_fig, "most_confident_wrong": wrong_fig}
        for name, fig in figures.items():
            if fig is not None:
                tb_writer.add_image(f"{split_name}/{name}", figure_rgb(fig), global_step, dataformats="HWC")
        # Indented lines render as a fixed-width code block in TensorBoard's markdown text tab.
        tb_writer.add_text(
            f"{split_name}/classification_report",
            "\n".join("    " + line for line in text.splitlines()),
            global_step,
        )
    return summary
