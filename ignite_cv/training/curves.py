"""Live learning curves: ``report/curves.png`` redrawn as a run's epochs end, so a user can watch it.

The figure is the comparison's 9.1 (:func:`ignite_cv.studies.figures.learning_curves_figure`) for the
one run: loss, accuracy, ROC-AUC and macro precision/recall/F1 per epoch, validation solid and
training dashed (``--train-metrics full`` gives the training stream every panel), phases shaded.

Why a drawer of our own rather than the run's background writer: a matplotlib figure of six panels
takes 0.2-1 s to draw on a busy CPU, longer than a small model's epoch, and the writer's queue is
waited on at every phase end and bounds what training may have in flight. So :class:`CurveDrawer`
draws on its own thread, one drawing at a time, always from the newest rows (requests that arrive
while it draws are folded into the next one), and starts a drawing only when the time since the last
one started is at least ``cost / max_share`` (``max_share`` 0.05: at most a twentieth of the run's
wall time goes to drawing; when epochs are slower than twenty drawings, that is every epoch; before
the first drawing is measured one is assumed to take :data:`EXPECTED_COST`, so a run of a few
seconds is not drawn while it trains). The last epoch is always drawn (:meth:`CurveDrawer.close`,
when training ends, before the test split is evaluated). Each file is written
atomically and carries the epochs it shows in its PNG ``Description`` (``epochs 1-7``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ignite.engine import Engine, Events

from ignite_cv.figures import save_figure
from ignite_cv.handlers.history import epoch_row
from ignite_cv.studies.figures import learning_curves_figure
from ignite_cv.studies.runs import RunRecord
from ignite_cv.training.loop import LoopParts, PhaseHook, PhaseRun

#: Where the live curves go, relative to the run folder.
CURVES_FILE = Path("report") / "curves.png"
#: At most this share of the wall time is spent drawing (a drawing starts only this rarely).
MAX_SHARE = 0.05
#: What a drawing is assumed to cost (s) before the first one is measured: a run shorter than
#: ``EXPECTED_COST / MAX_SHARE`` (10 s) is drawn once, when its training ends.
EXPECTED_COST = 0.5


def curves_description(rows: list[dict]) -> str:
    """The PNG ``Description`` of a figure of ``rows``: ``epochs FIRST-LAST`` (``no epochs``)."""
    epochs = [int(r["epoch"]) for r in rows if "epoch" in r]
    return f"epochs {min(epochs)}-{max(epochs)}" if epochs else "no epochs"


class CurveDrawer:
    """Draws ``draw(rows)`` into ``path`` on a worker thread: one drawing at a time, the newest rows,
    at most ``max_share`` of the wall time (``None``: every request; ``background=False``: on the
    caller's thread, for tests and tools)."""

    def __init__(
        self,
        path: Path,
        draw: Callable[[list[dict]], object],
        max_share: float | None = MAX_SHARE,
        background: bool = True,
        warn: Callable[[str], None] = print,
        expected_cost: float = EXPECTED_COST,
    ) -> None:
        if max_share is not None and not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {max_share}")
        self.path, self.draw, self.max_share, self.background, self.warn = (
            path,
            draw,
            max_share,
            background,
            warn,
        )
        self._latest: list[dict] | None = None
        self._drawn: list[dict] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_start = time.perf_counter()  # the run's start: the first drawing waits too
        self._cost = expected_cost
        self._failed = False
        #: Drawings made (files written).
        self.drawings = 0

    def request(self, rows: list[dict]) -> None:
        """Draw ``rows`` (a snapshot: not modified afterwards) when the drawer is free and it is time."""
        with self._lock:
            self._latest = rows
            busy = self._thread is not None and self._thread.is_alive()
        if busy or self._failed:
            return
        if (
            self.max_share is not None
            and time.perf_counter() - self._last_start < self._cost / self.max_share
        ):
            return
        self._start(rows)

    def close(self) -> None:
        """After the drawing in progress, draw the newest rows (on this thread) if they are not drawn yet."""
        if self._thread is not None:
            self._thread.join()
        if self._latest is not None and self._latest is not self._drawn and not self._failed:
            self._run(self._latest)

    def _start(self, rows: list[dict]) -> None:
        self._last_start = time.perf_counter()
        if not self.background:
            self._run(rows)
            return
        self._thread = threading.Thread(target=self._run, args=(rows,), name="ignite_cv-curves", daemon=True)
        self._thread.start()

    def _run(self, rows: list[dict]) -> None:
        started = time.perf_counter()
        try:
            save_figure(self.draw(rows), self.path, metadata={"Description": curves_description(rows)})
        except Exception as err:  # a figure must never stop a training run
            self._failed = True
            self.warn(f"warning: live curves disabled ({type(err).__name__}: {err})")
            return
        self._cost = time.perf_counter() - started
        self._drawn = rows
        self.drawings += 1


def _figure_rows(row: dict) -> dict:
    """The scalar entries of a history row (what the curves plot; vectors and matrices stay out)."""
    return {k: v for k, v in row.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


class LiveCurves(PhaseHook):
    """A phase hook that redraws ``<run>/report/curves.png`` after each validation.

    ``rows``: the history of a resumed run (its earlier epochs); ``title`` names the run. Call
    :meth:`close` when the run's training ends (the last epoch is drawn then, if it was not yet).
    """

    def __init__(
        self,
        run_dir: Path,
        title: str,
        rows: list[dict] | None = None,
        max_share: float | None = MAX_SHARE,
        background: bool = True,
        warn: Callable[[str], None] = print,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.title = title
        self.rows = [_figure_rows(r) for r in (rows or [])]
        self.drawer = CurveDrawer(self.run_dir / CURVES_FILE, self._figure, max_share, background, warn)

    def _figure(self, rows: list[dict]):
        epochs = curves_description(rows).removeprefix("epochs ")
        run = RunRecord(self.run_dir, {}, rows)
        return learning_curves_figure([run], [self.run_dir.name], suptitle=f"{self.title}: epochs {epochs}")

    def attach(self, parts: LoopParts, run: PhaseRun) -> list:
        optimizer, trainer = run.optimizer, run.trainer

        def on_validation(evaluator: Engine) -> None:
            row = epoch_row(
                parts.timeline.epoch,
                run.phase.name,
                optimizer.param_groups[0]["lr"],
                0.0,
                trainer.state.metrics,
                evaluator.state.metrics,
            )
            self.rows = [*self.rows, _figure_rows(row)]  # a new list: the drawer keeps its snapshot
            self.drawer.request(self.rows)

        return [parts.evaluator.add_event_handler(Events.COMPLETED, on_validation)]

    def close(self) -> None:
        """Draw the last epochs if they are not drawn yet."""
        self.drawer.close()
