"""Comparison figures: what each draws (lines, bars, panels), readable with 2 and with 12 runs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from ignite_cv.studies import figures
from ignite_cv.studies.runs import collect_runs, load_run
from ignite_cv.studies.table import run_labels, varied_fields
from tests.recipe_utils import REPO
from tests.studies.run_factory import GRID_12, recipe_config, write_grid_12, write_run


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The 12-run transfer-learning grid (synthetic folders), its varied fields and labels."""
    runs = collect_runs([write_grid_12(tmp_path_factory.mktemp("grid") / "study")[0].parent])
    fields = varied_fields([r.config for r in runs])
    return runs, fields, run_labels(runs, fields)


def _gids(ax, prefix: str, kind=None) -> list[str]:
    artists = ax.get_children() if kind is None else [a for a in ax.get_children() if isinstance(a, kind)]
    return [a.get_gid() for a in artists if (a.get_gid() or "").startswith(prefix)]


def _no_overlap(fig) -> None:
    """The figure legend and every title stay clear of the axes' plotting areas (drawn at full size)."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible() and ax.axison]
    for legend in fig.legends:
        extent = legend.get_window_extent(renderer)
        assert not any(extent.overlaps(box) for box in boxes)
        assert extent.x0 >= -1 and extent.x1 <= fig.bbox.x1 + 1 and extent.y0 >= -1  # not cut off
    if fig._suptitle is not None:
        title = fig._suptitle.get_window_extent(renderer)
        assert not any(title.overlaps(box) for box in boxes)
        assert not any(title.overlaps(legend.get_window_extent(renderer)) for legend in fig.legends)


def test_learning_curves_one_line_per_run_and_split(tmp_path):
    binary = write_run(
        tmp_path / "bin", recipe_config(model="resnet18"), phases=[("warmup", 1), ("finetune", 2)]
    )
    multi = write_run(
        tmp_path / "multi", recipe_config(model="resnet34", mode="scratch"), classes=tuple("abc"), metrics=()
    )
    runs = [load_run(binary), load_run(multi)]
    fig = figures.learning_curves_figure(runs, ["a", "b"])
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == [
        "loss",
        "accuracy",
        "ROC-AUC (validation only)",
        "precision (macro) (validation only)",
        "recall (macro) (validation only)",
        "F1 (macro) (validation only)",
    ]
    loss, _, roc = fig.axes[:3]
    assert sorted(_gids(loss, "val:") + _gids(loss, "train:")) == ["train:0", "train:1", "val:0", "val:1"]
    assert _gids(roc, "val:") == ["val:0"]  # the run without ROC-AUC has no line there
    val0 = next(line for line in loss.get_lines() if line.get_gid() == "val:0")
    np.testing.assert_array_equal(val0.get_xdata(), [1, 2, 3])
    assert list(val0.get_ydata()) == runs[0].series("val/loss")[1]
    # the multi-phase run alone changes phase: one shared dotted line at 1.5, named after the new phase
    shared = [line for line in loss.get_lines() if line.get_gid() == "phase:shared"]
    assert len(shared) == 1 and shared[0].get_xdata()[0] == 1.5
    assert "finetune" in [t.get_text() for t in loss.texts]
    _no_overlap(fig)


def test_learning_curves_of_12_runs_stay_readable(grid):
    runs, _, labels = grid
    fig = figures.learning_curves_figure(runs, labels)
    legend = [t.get_text().replace("\n", " ") for t in fig.legends[0].get_texts()]
    assert legend == [*labels, "validation", "training", "phase change (multi-phase runs)"]
    assert len(set(labels)) == 12 and max(len(label) for label in labels) <= 46  # no wrapping
    accuracy = fig.axes[1]
    assert len(_gids(accuracy, "val:")) == 12 and len(_gids(accuracy, "train:")) == 12
    markers = {
        line.get_marker() for line in accuracy.get_lines() if (line.get_gid() or "").startswith("val:")
    }
    assert markers == {"o", "s"}  # colours repeat after ten runs; the marker changes
    _no_overlap(fig)


def test_learning_curves_phase_marks(tmp_path):
    config = recipe_config()
    same = [
        load_run(write_run(tmp_path / f"s{i}", config, phases=[("warmup", 1), ("finetune", 2)]))
        for i in range(2)
    ]
    bands = figures.learning_curves_figure(same, ["a", "b"])
    assert len(_gids(bands.axes[0], "phase:band")) == 2  # warmup and finetune bands
    other = load_run(write_run(tmp_path / "o", config, phases=[("warmup", 2), ("finetune", 1)]))
    per_run = figures.learning_curves_figure([*same, other], ["a", "b", "c"])
    assert sorted(_gids(per_run.axes[0], "phase:")) == ["phase:0", "phase:1", "phase:2"]


def test_training_time_bars_stack_the_phases(grid):
    runs, fields, _ = grid
    fig = figures.training_time_figure(runs, fields)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("weights:")]
    assert [ax.get_title() for ax in panels] == ["weights: pretrained", "weights: random"]
    bars = [
        b
        for ax in panels
        for b in ax.patches
        if isinstance(b, Rectangle) and (b.get_gid() or "").startswith("time:")
    ]
    assert len(bars) == sum(len(r.phases) for r in runs)  # one segment per phase
    for index, run in enumerate(runs):
        mine = [b for b in bars if b.get_gid().split(":")[1] == str(index)]
        assert sum(b.get_height() for b in mine) == pytest.approx(run.train_time_s)
    # random-weights runs (scratch, extract) are in the second panel only
    random_runs = {str(i) for i, (_, weights, *_rest) in enumerate(GRID_12) if weights == "none"}
    assert {b.get_gid().split(":")[1] for b in panels[1].patches if b.get_gid()} == random_runs
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "scratch",
        "extract",
        "finetune 1",
        "finetune 2",
        "finetune all",
        "earlier phase (head warm-up)",
    ]
    assert fig.legends[0].get_title().get_text() == "colour: mode (blocks unfrozen)"
    _no_overlap(fig)


def test_accuracy_by_weights_shows_runs_that_trained_everything(grid):
    runs, fields, _ = grid
    fig = figures.accuracy_by_weights_figure(runs, fields)
    ax = fig.axes[0]
    bars = {b.get_gid(): b.get_height() for b in ax.patches if (b.get_gid() or "").startswith("acc:")}
    everything = {
        f"acc:{i}"
        for i, (_, _, mode, unfreeze, _) in enumerate(GRID_12)
        if unfreeze == "all" and mode != "extract"
    }
    assert set(bars) == everything  # scratch and finetune-all: 2 per network
    for gid, height in bars.items():
        assert height == runs[int(gid.split(":")[1])].test_metrics["accuracy"]
    assert "8 run(s) with frozen layers are not shown" in ax.get_title()
    _no_overlap(fig)


def test_accuracy_by_unfrozen_blocks(grid):
    runs, fields, _ = grid
    fig = figures.accuracy_by_unfrozen_figure(runs, fields)
    pretrained, random = fig.axes[:2]
    lines = {line.get_gid(): line for line in pretrained.get_lines() if line.get_gid()}
    assert sorted(lines) == ["unfrozen:alexnet_small", "unfrozen:resnet18"]
    np.testing.assert_array_equal(lines["unfrozen:resnet18"].get_xdata(), [0, 1, 2, 5])  # extract, 1, 2, all
    np.testing.assert_array_equal(lines["unfrozen:alexnet_small"].get_xdata(), [0, 1, 2, 7])
    assert [len(line.get_xdata()) for line in random.get_lines() if line.get_gid()] == [1, 1]  # extract only
    _no_overlap(fig)


def test_confusion_grid_one_panel_per_run(grid):
    runs, _, labels = grid
    items = [(label, r.test_confusion_matrix, r.class_names) for label, r in zip(labels, runs)]
    fig = figures.confusion_grid_figure(items, "test")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 12 and len(fig.axes) == 12 + 1  # 4 × 3 panels and the colour bar
    first = shown[0]
    np.testing.assert_allclose(first.images[0].get_array().sum(axis=1), 1.0)  # row-normalised
    counts = {t.get_text() for t in first.texts}
    assert str(runs[0].test_confusion_matrix[0][0]) in counts
    assert first.get_title().startswith(labels[0])
    _no_overlap(fig)


def test_heatmap_cells_hold_the_test_accuracy(grid):
    runs, fields, _ = grid
    fig = figures.metrics_heatmap_figure(runs, fields)
    values = fig.axes[0].images[0].get_array()
    assert values.shape == (6, 2)  # (weights, mode) settings × networks
    assert values[0, 0] == runs[0].test_metrics["accuracy"]  # resnet18 random scratch
    assert values[5, 1] == runs[11].test_metrics["accuracy"]  # alexnet_small pretrained finetune all
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[0] == "random · scratch" and rows[-1] == "pretrained · finetune all"


def test_figures_say_why_when_nothing_can_be_drawn(tmp_path):
    run = load_run(write_run(tmp_path / "r", recipe_config(mode="scratch"), finished=False))
    for fig in (
        figures.training_time_figure([run], []),
        figures.accuracy_by_weights_figure([run], []),
        figures.accuracy_by_unfrozen_figure([run], []),
        figures.metrics_heatmap_figure([run], []),
        figures.confusion_grid_figure([], "test"),
    ):
        assert fig.axes == [] and fig.texts[0].get_text().startswith("no ")


def test_no_pyplot(tmp_path):
    # Checked in a fresh interpreter: other tests may import pyplot in this one.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.studies.run_factory import recipe_config, write_run\n"
        "from ignite_cv.studies.compare import compare_runs\n"
        f"root = Path({str(tmp_path)!r}) / 'study'\n"
        "write_run(root / 'a', recipe_config(model='resnet18'), phases=[('warmup', 1), ('finetune', 1)])\n"
        "write_run(root / 'b', recipe_config(model='resnet34', mode='extract'), unfrozen_blocks=[0])\n"
        "compare_runs([root], root / 'out')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "TkAgg"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300, cwd=REPO)
    assert (tmp_path / "study" / "out" / "learning_curves.png").stat().st_size > 0
