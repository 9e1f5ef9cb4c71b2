"""write_test_report: files on disk agree with sklearn and with each other; TensorBoard gets the figures."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ignite_cv.report import BINARY_REPORT_FILES, REPORT_FILES, write_test_report
from ignite_cv.roc import roc_auc
from ignite_cv.utils.atomic import FILE_MODE
from ignite_cv.utils.errors import UserError


def synthetic(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    rng.shuffle(y)
    logits = rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header[1:], [row[0] for row in body], np.array([[int(v) for v in row[1:]] for row in body])


def png_size(path):
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


class RecordingWriter:
    """A real SummaryWriter into ``folder`` whose images and texts are read back from its event file."""

    def __init__(self, folder):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = folder
        self.writer = SummaryWriter(str(folder))
        self.texts = {}

    def _get_file_writer(self):
        return self.writer._get_file_writer()

    def add_text(self, tag, text, global_step=None):
        self.texts[tag] = text
        self.writer.add_text(tag, text, global_step)

    def images(self):
        """{tag: (step, encoded PNG bytes)} of the images in the event file."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        self.writer.flush()
        events = EventAccumulator(str(self.folder), size_guidance={"images": 0}).Reload()
        return {
            tag: (events.Images(tag)[-1].step, events.Images(tag)[-1].encoded_image_string)
            for tag in events.Tags()["images"]
        }


@pytest.mark.parametrize("num_classes", [2, 5])
def test_report_matches_sklearn(tmp_path, num_classes):
    n = 60
    y, p = synthetic(n, num_classes)
    names = ["cat", "dog"] if num_classes == 2 else [f"class, {k}" for k in range(num_classes)]
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    writer = RecordingWriter(tmp_path / "tb")
    summary = write_test_report(
        tmp_path / "report", torch.from_numpy(y), torch.from_numpy(p), names, images, writer, global_step=7
    )
    out = tmp_path / "report"
    expected_files = [*REPORT_FILES, *(BINARY_REPORT_FILES if num_classes == 2 else ())]
    assert sorted(f.name for f in out.iterdir()) == sorted(expected_files)  # no temp files left
    assert {f.stat().st_mode & 0o777 for f in out.iterdir()} == {FILE_MODE}  # not mkstemp's 0600

    pred = p.argmax(axis=1)
    cols, rows, cm = read_csv(out / "confusion_matrix.csv")
    assert cols == names and rows == names  # names with commas survive CSV quoting
    assert cm.sum() == n
    np.testing.assert_array_equal(cm, confusion_matrix(y, pred))

    roc = json.loads((out / "roc.json").read_text())
    sk_auc = roc_auc_score(y, p[:, 1]) if num_classes == 2 else roc_auc_score(y, p, multi_class="ovr")
    assert roc["auc"] == roc_auc(y, p) == summary["roc_auc"]
    assert roc["auc"] == pytest.approx(sk_auc, abs=1e-12)

    report = json.loads((out / "classification_report.json").read_text())
    expected = classification_report(y, pred, output_dict=True, zero_division=0)
    for k, name in enumerate(names):
        for ours, theirs in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert report["classes"][name][ours] == pytest.approx(expected[str(k)][theirs])
        assert report["classes"][name]["support"] == expected[str(k)]["support"] == cm[k].sum()
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["accuracy"] == pytest.approx(np.trace(cm) / n)
    for ours, theirs in [("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")]:
        assert report[ours]["f1"] == pytest.approx(expected[theirs]["f1-score"])
        assert report[ours]["recall"] == pytest.approx(expected[theirs]["recall"])

    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == summary
    assert summary["n"] == n and summary["split"] == "test"
    assert summary["macro_f1"] == report["macro_avg"]["f1"]
    assert summary["weighted_f1"] == report["weighted_avg"]["f1"]
    assert summary["num_wrong"] == int((pred != y).sum()) > 0
    assert f"{summary['roc_auc']:.4f}" in (out / "classification_report.txt").read_text()

    for name in ("confusion_matrix.png", "roc.png", "most_confident_wrong.png"):
        width, height = png_size(out / name)
        assert width > 50 and height > 50

    binary_figures = {"test/precision_recall": "pr.png"} if num_classes == 2 else {}
    files = {
        "test/confusion_matrix": "confusion_matrix.png",
        "test/roc": "roc.png",
        "test/most_confident_wrong": "most_confident_wrong.png",
        **binary_figures,
    }
    images = writer.images()
    assert set(images) == set(files)
    for tag, file in files.items():  # TensorBoard shows the report's PNGs, byte for byte, at the step
        assert images[tag] == (7, (out / file).read_bytes())
    assert (
        "cat" in writer.texts["test/classification_report"]
        or "class, 0" in writer.texts["test/classification_report"]
    )


def test_most_confident_wrong_order_and_titles(tmp_path, monkeypatch):
    import ignite_cv.report as report_module

    y = np.array([0, 0, 1, 1, 2])
    p = np.array(
        [
            [0.2, 0.7, 0.1],  # wrong, p=0.70
            [0.9, 0.05, 0.05],  # right
            [0.95, 0.03, 0.02],  # wrong, p=0.95
            [0.1, 0.8, 0.1],  # right
            [0.1, 0.6, 0.3],  # wrong, p=0.60
        ]
    )
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1).repeat(4, axis=2).repeat(4, axis=3)
    seen = {}
    real = report_module.labelled_grid

    def spy(selected, titles, correct, **kwargs):
        seen.update(selected=np.asarray(selected), titles=titles, correct=correct)
        return real(selected, titles, correct, **kwargs)

    monkeypatch.setattr(report_module, "labelled_grid", spy)
    write_test_report(tmp_path, y, p, ["a", "b", "c"], images, max_wrong=2)
    assert seen["titles"] == ["a (p=0.95) / b", "b (p=0.70) / a"]
    assert seen["selected"][:, 0, 0, 0].tolist() == [2, 0]
    assert seen["correct"] == [False, False]  # titles in red


def test_all_correct_writes_placeholder(tmp_path):
    y = np.array([0, 1, 0, 1])
    p = np.eye(2)[y] * 0.9 + 0.05
    summary = write_test_report(tmp_path, y, p, ["neg", "pos"], np.zeros((4, 1, 6, 6), dtype=np.uint8))
    assert summary["num_wrong"] == 0 and summary["accuracy"] == 1.0 and summary["roc_auc"] == 1.0
    assert png_size(tmp_path / "most_confident_wrong.png")[0] > 50


def test_without_images_removes_stale_grid(tmp_path):
    y, p = synthetic(30, 3)
    write_test_report(tmp_path, y, p, ["a", "b", "c"], np.zeros((30, 3, 4, 4), dtype=np.uint8))
    assert (tmp_path / "most_confident_wrong.png").exists()
    summary = write_test_report(tmp_path, y, p, ["a", "b", "c"], None)
    assert not (tmp_path / "most_confident_wrong.png").exists()
    assert "most_confident_wrong.png" not in summary["files"]


def test_absent_class_gives_finite_auc(tmp_path):
    y, p = synthetic(50, 5)
    keep = y != 2
    y, p = y[keep], p[keep]
    summary = write_test_report(tmp_path, y, p, list("abcde"))
    roc = json.loads((tmp_path / "roc.json").read_text())
    assert math.isfinite(summary["roc_auc"]) and roc["auc"] == summary["roc_auc"]
    assert roc["classes_without_curve"] == ["c"]
    report = json.loads((tmp_path / "classification_report.json").read_text())
    assert report["classes"]["c"]["support"] == 0
    _, _, cm = read_csv(tmp_path / "confusion_matrix.csv")
    assert cm.shape == (5, 5) and cm.sum() == len(y) and cm[2].sum() == 0


def test_single_class_auc_is_null_in_json(tmp_path):
    y = np.zeros(6, dtype=int)
    p = np.tile([0.8, 0.2], (6, 1))
    summary = write_test_report(tmp_path, y, p, ["a", "b"])
    assert math.isnan(summary["roc_auc"])
    assert json.loads((tmp_path / "report.json").read_text())["roc_auc"] is None
    assert json.loads((tmp_path / "roc.json").read_text())["auc"] is None


def test_real_summary_writer(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    y, p = synthetic(20, 2)
    writer = SummaryWriter(tmp_path / "tb")
    write_test_report(
        tmp_path / "r", y, p, ["a", "b"], np.zeros((20, 1, 4, 4), np.uint8), writer, 3, split_name="val"
    )
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["images"]) == {
        "val/confusion_matrix",
        "val/roc",
        "val/most_confident_wrong",
        "val/precision_recall",
    }
    assert events.Images("val/roc")[0].step == 3


def test_input_checks(tmp_path):
    with pytest.raises(ValueError):
        write_test_report(tmp_path / "bad", np.array([0, 3]), np.full((2, 2), 0.5), ["a", "b"])
    assert not (tmp_path / "bad").exists()  # checked before anything is written
    with pytest.raises(UserError):
        write_test_report(tmp_path, np.zeros(0, int), np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(ValueError):
        write_test_report(tmp_path, np.zeros(2, int), np.full((2, 2), 0.5), ["a", "a"])
    with pytest.raises(ValueError):
        write_test_report(
            tmp_path, np.zeros(2, int), np.full((2, 2), 0.5), ["a", "b"], np.zeros((3, 1, 2, 2))
        )


def test_a_binary_report_decides_at_its_threshold_and_adds_the_binary_metrics(tmp_path):
    y, p = synthetic(80, 2, seed=3)
    threshold = 0.3
    called = (p[:, 1] >= threshold).astype(int)
    assert (called != p.argmax(axis=1)).any()  # the threshold changes some decisions
    summary = write_test_report(tmp_path, y, p, ["normal", "lesion"], threshold=threshold)
    _, _, cm = read_csv(tmp_path / "confusion_matrix.csv")
    np.testing.assert_array_equal(cm, confusion_matrix(y, called))
    assert summary["positive_class"] == "lesion" and summary["threshold"] == threshold
    assert summary["sensitivity"] == pytest.approx(recall_score(y, called))
    assert summary["specificity"] == pytest.approx(recall_score(1 - y, 1 - called))
    assert summary["ppv"] == pytest.approx(precision_score(y, called))
    assert summary["npv"] == pytest.approx(precision_score(1 - y, 1 - called))
    assert summary["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, called))
    assert summary["average_precision"] == pytest.approx(average_precision_score(y, p[:, 1]))
    pr = json.loads((tmp_path / "pr.json").read_text())
    assert pr["average_precision"] == summary["average_precision"] and pr["positives"] == int(y.sum())
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) + 1
    text = (tmp_path / "classification_report.txt").read_text()
    assert f"sensitivity {summary['sensitivity']:.4f}" in text and "called at P >= 0.3" in text
    assert min(png_size(tmp_path / "pr.png")) > 50


def test_a_threshold_is_refused_for_several_classes(tmp_path):
    y, p = synthetic(30, 3)
    with pytest.raises(ValueError, match="two classes"):
        write_test_report(tmp_path, y, p, ["a", "b", "c"], threshold=0.3)


@pytest.mark.parametrize("case", ["random", "zero_division", "long_names", "binary"])
def test_scores_and_table_equal_sklearn(case):
    from ignite_cv.report import classification_scores, classification_text, confusion_counts

    rng = np.random.default_rng(len(case))
    num_classes = 2 if case == "binary" else 5
    y = rng.integers(0, num_classes, 80)
    pred = np.where(rng.random(80) < 0.6, y, rng.integers(0, num_classes, 80))
    if case == "zero_division":  # class 3 never true, class 4 never predicted
        y[y == 3] = 0
        pred[pred == 4] = 1
    names = [
        f"a rather long class name number {k}" if case == "long_names" else f"c{k}"
        for k in range(num_classes)
    ]
    labels = list(range(num_classes))
    cm = confusion_counts(y, pred, num_classes)
    assert np.array_equal(cm, confusion_matrix(y, pred, labels=labels))
    scores = classification_scores(cm)
    expected = classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    for k in labels:
        for ours, theirs in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert scores[ours][k] == pytest.approx(expected[str(k)][theirs], abs=1e-15)
    assert scores["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-15)
    for ours, theirs in [("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")]:
        for metric, sk_metric in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert scores[ours][metric] == pytest.approx(expected[theirs][sk_metric], abs=1e-15)
        assert scores[ours]["support"] == expected[theirs]["support"] == 80
    text = classification_report(y, pred, labels=labels, target_names=names, digits=4, zero_division=0)
    assert classification_text(scores, names, digits=4) == text
