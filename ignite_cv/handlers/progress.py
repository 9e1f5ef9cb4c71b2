"""Progress on the console: fastprogress bars on a terminal, one plain line per epoch otherwise.

fastprogress 1.1.6 treats every stdout as a terminal (its check returns the ``isatty`` method, which
is always truthy), so in a log file it writes ``\\r``-joined bar updates without newlines. This
handler asks ``sys.stdout.isatty()`` itself and only creates bars on a real terminal; in a file or
a pipe each epoch is one line, which is what CI logs and ``tail -f`` want.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import torch
from ignite.engine import Engine, Events

from ignite_cv.metrics import scalar_metrics


def format_metrics(metrics: dict, names: tuple[str, ...] | None = None) -> str:
    values = scalar_metrics(metrics)
    keys = [n for n in (names or values) if n in values]
    return " ".join(f"{k} {values[k]:.4f}" for k in keys)


class EpochLine:
    """Formats the one-line epoch summary shared by both outputs."""

    VAL_NAMES = ("loss", "accuracy", "f1_macro", "roc_auc", "top5")

    def __call__(
        self, epoch: int, total: int, train: dict, val: dict, lr: float, seconds: float, phase: str | None
    ) -> str:
        phase_text = f" [{phase}]" if phase else ""
        return (
            f"epoch {epoch}/{total}{phase_text} train: {format_metrics(train, ('loss', 'accuracy'))} | "
            f"val: {format_metrics(val, self.VAL_NAMES)} | lr {lr:.3g} | {seconds:.1f}s"
        )


class ProgressReporter:
    """Attach to a trainer and its evaluator; prints (rank 0 only — the caller decides) one line per epoch.

    ``epoch_fn()`` gives the run's epoch (phases continue one timeline), ``total_epochs`` the planned
    maximum, ``log_every`` how often (iterations) the bar's loss text is refreshed — each refresh
    reads the loss on the host, the only synchronisation progress reporting adds.
    """

    def __init__(
        self,
        total_epochs: int,
        epoch_fn: Callable[[], int],
        log_every: int = 50,
        lr_fn: Callable[[], float] | None = None,
        stream: TextIO | None = None,
        phase: str | None = None,
        use_bars: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.total_epochs = total_epochs
        self.epoch_fn = epoch_fn
        self.log_every = max(1, log_every)
        self.lr_fn = lr_fn or (lambda: float("nan"))
        self.phase = phase
        self.use_bars = _is_terminal(self.stream) if use_bars is None else use_bars
        self._line = EpochLine()
        self._bar = None
        self._master = None
        self._epoch_start = 0.0

    def attach(self, trainer: Engine, evaluator: Engine) -> list:
        """Attach; returns the handle of the evaluator handler (remove it when the trainer is done)."""
        trainer.add_event_handler(Events.EPOCH_STARTED, self._on_epoch_started)
        if self.use_bars:
            trainer.add_event_handler(Events.ITERATION_COMPLETED, self._on_iteration)
        # Printed after validation: the evaluator's metrics are ready when its run completes.
        return [evaluator.add_event_handler(Events.COMPLETED, self._on_validation, trainer)]

    def _on_epoch_started(self, trainer: Engine) -> None:
        self._epoch_start = time.perf_counter()
        if self.use_bars:
            from fastprogress.fastprogress import ConsoleMasterBar, ConsoleProgressBar

            if self._master is None:
                self._master = ConsoleMasterBar(range(self.total_epochs))
            self._bar = ConsoleProgressBar(range(trainer.state.epoch_length), parent=self._master)
            self._bar.update(0)

    def _on_iteration(self, trainer: Engine) -> None:
        i = (trainer.state.iteration - 1) % trainer.state.epoch_length + 1
        if self._bar is None:
            return
        if i % self.log_every == 0:
            loss = trainer.state.output["loss"]
            self._bar.comment = f"loss {float(loss.item() if isinstance(loss, torch.Tensor) else loss):.4f}"
        self._bar.update(i)

    def _on_validation(self, evaluator: Engine, trainer: Engine) -> None:
        line = self._line(
            self.epoch_fn(),
            self.total_epochs,
            trainer.state.metrics,
            evaluator.state.metrics,
            self.lr_fn(),
            time.perf_counter() - self._epoch_start,
            self.phase,
        )
        if self.use_bars and self._master is not None:
            self._master.write(line)
        else:
            print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # closed stream
        return False
