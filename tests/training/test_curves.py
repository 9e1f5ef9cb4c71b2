"""Live learning curves: report/curves.png is rewritten after each epoch (atomically, with the epochs
it shows), the drawer never holds training up, and a failing figure does not stop a run."""

from __future__ import annotations

import time

from ignite.engine import Events
from PIL import Image

from ignite_cv.phases import Phase
from ignite_cv.training.curves import CURVES_FILE, CurveDrawer, LiveCurves
from ignite_cv.training.loop import PhaseHook, run_phase
from tests.training.test_loop import _parts


def _description(path) -> str:
    with Image.open(path) as image:
        return image.text["Description"]


class _ReadCurves(PhaseHook):
    """After each validation (and after the curves hook), what curves.png says it shows."""

    def __init__(self, path) -> None:
        self.path, self.seen = path, []

    def attach(self, parts, run):
        return [
            parts.evaluator.add_event_handler(
                Events.COMPLETED, lambda _: self.seen.append(_description(self.path))
            )
        ]


def test_the_curves_file_is_rewritten_after_every_epoch_across_phases(tmp_path):
    parts = _parts(tmp_path)
    curves = LiveCurves(tmp_path, "test run", max_share=None, background=False)
    reader = _ReadCurves(tmp_path / CURVES_FILE)
    run_phase(parts, Phase("warmup", 1, "adam", 0.01, 0.0), 0, [curves, reader])
    run_phase(parts, Phase("finetune", 2, "sgd", 0.01, 0.0), 1, [curves, reader])
    curves.close()
    assert reader.seen == ["epochs 1-1", "epochs 1-2", "epochs 1-3"]
    assert curves.drawer.drawings == 3  # close() had nothing left to draw
    assert [(r["epoch"], r["phase"]) for r in curves.rows] == [
        (1, "warmup"),
        (2, "finetune"),
        (3, "finetune"),
    ]
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "val/f1_macro"} <= set(
        curves.rows[-1]
    )
    with Image.open(tmp_path / CURVES_FILE) as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_a_resumed_run_draws_its_earlier_epochs_too(tmp_path):
    parts = _parts(tmp_path)
    earlier = [{"epoch": 1, "phase": "train", "train/loss": 0.9, "val/loss": 1.0, "val/accuracy": 0.5}]
    curves = LiveCurves(tmp_path, "resumed", rows=earlier, max_share=None, background=False)
    parts.timeline.epoch = 1
    run_phase(parts, Phase("train", 1, "adam", 0.01, 0.0), 0, [curves])
    assert _description(tmp_path / CURVES_FILE) == "epochs 1-2"


def test_the_drawer_keeps_to_its_share_of_time_and_always_draws_the_newest_rows_last(tmp_path):
    drawn = []

    def slow_draw(rows):
        drawn.append(len(rows))
        time.sleep(0.05)
        from ignite_cv.figures import text_figure

        return text_figure(f"{len(rows)} rows")

    drawer = CurveDrawer(tmp_path / "c.png", slow_draw, max_share=0.05, expected_cost=0.0)
    rows = []
    for epoch in range(1, 21):  # 20 epochs far faster than the drawing
        rows = [*rows, {"epoch": epoch}]
        drawer.request(rows)
    drawer.close()
    assert drawn[0] == 1 and drawn[-1] == 20  # the first at once, the last at close
    assert len(drawn) < 5  # not one per epoch: a 0.05 s drawing may start once per second
    assert _description(tmp_path / "c.png") == "epochs 1-20"
    short = []
    quiet = CurveDrawer(tmp_path / "d.png", lambda rows: short.append(len(rows)) or slow_draw(rows))
    for epoch in range(1, 4):  # a run of a few seconds: nothing drawn while it trains
        quiet.request([{"epoch": e} for e in range(1, epoch + 1)])
    assert short == []
    quiet.close()
    assert short == [3]


def test_a_figure_that_fails_warns_once_and_training_goes_on(tmp_path):
    warnings = []

    def broken(rows):
        raise RuntimeError("no fonts")

    drawer = CurveDrawer(tmp_path / "c.png", broken, max_share=None, background=False, warn=warnings.append)
    for epoch in range(3):
        drawer.request([{"epoch": epoch + 1}])
    drawer.close()
    assert warnings == ["warning: live curves disabled (RuntimeError: no fonts)"]
    assert not (tmp_path / "c.png").exists()


def test_closing_waits_for_the_drawing_in_progress_then_draws_the_newest_rows(tmp_path):
    import threading

    from ignite_cv.figures import text_figure

    release, drawn = threading.Event(), []

    def held_draw(rows):
        release.wait(5)
        drawn.append(len(rows))
        return text_figure(f"{len(rows)} rows")

    drawer = CurveDrawer(tmp_path / "c.png", held_draw, max_share=None)
    drawer.request([{"epoch": 1}])  # drawing 1 starts on the drawer's thread, held
    drawer.request([{"epoch": 1}, {"epoch": 2}])  # busy: folded into the last drawing
    assert drawn == []
    threading.Timer(0.2, release.set).start()
    drawer.close()  # joins drawing 1, then draws the newest rows
    assert drawn == [1, 2] and _description(tmp_path / "c.png") == "epochs 1-2"
