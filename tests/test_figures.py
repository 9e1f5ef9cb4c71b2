"""Figure helpers: render without pyplot, save atomically, handle grey/RGB and 2..100 classes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ignite_cv.figures import (
    CELL_TEXT_MAX_CLASSES,
    confusion_matrix_figure,
    roc_figure,
    save_figure,
    text_figure,
)


def open_png(path):
    with Image.open(path) as image:
        image.load()
        return image.size


def test_no_pyplot(tmp_path):
    # Figures must not touch pyplot's global state; checked in a fresh interpreter because other tests
    # (TensorBoard's add_figure) may import pyplot in this one.
    code = (
        "import sys, numpy as np\n"
        "from ignite_cv.figures import confusion_matrix_figure, save_figure\n"
        f"save_figure(confusion_matrix_figure(np.eye(3, dtype=int), 'abc'), {str(tmp_path / 'cm.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "MPLBACKEND": "TkAgg"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("num_classes", [2, 7, 100])
def test_confusion_matrix_figure(tmp_path, num_classes):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 20, size=(num_classes, num_classes))
    cm[0] = 0  # a class without samples must not divide by zero
    fig = confusion_matrix_figure(cm, [f"c{k}" for k in range(num_classes)])
    texts = [t.get_text() for t in fig.axes[0].texts]
    if num_classes <= CELL_TEXT_MAX_CLASSES:
        assert any(t.startswith(str(cm[1, 1])) for t in texts)
    else:
        assert texts == []
    tick_labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert tick_labels == [f"c{k}" for k in range(num_classes)]
    width, height = open_png(save_figure(fig, tmp_path / "cm.png"))
    assert width > 100 and height > 100


def test_confusion_matrix_shape_checked():
    with pytest.raises(ValueError):
        confusion_matrix_figure(np.zeros((3, 3)), ["a", "b"])


def test_roc_figure_empty_and_full(tmp_path):
    curves = {
        "auc": 0.75,
        "average": "binary",
        "curves": {
            "dog": {"fpr": [0, 0.5, 1], "tpr": [0, 1, 1], "thresholds": [None, 0.5, 0.1], "auc": 0.75}
        },
    }
    fig = roc_figure(curves)
    assert "0.7500" in fig.axes[0].get_title()
    assert open_png(save_figure(fig, tmp_path / "roc.png"))[0] > 100
    empty = roc_figure({"auc": None, "average": "macro_ovr", "curves": {}})
    assert "undefined" in empty.axes[0].get_title()


def test_save_figure_atomic(tmp_path, monkeypatch):
    fig = text_figure("x")
    target = tmp_path / "sub" / "fig.png"
    target.parent.mkdir()
    target.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["fig.png"]  # no temp file left behind
    monkeypatch.undo()
    save_figure(fig, target)
    width, height = fig.get_size_inches() * 100  # save_figure's default dpi
    assert open_png(target) == (round(width), round(height))
