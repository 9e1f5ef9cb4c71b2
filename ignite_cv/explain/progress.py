"""Progress of a long explanation: a fastprogress bar on a terminal, a plain line per tenth otherwise.

fastprogress 1.1.6 takes every stdout for a terminal (see :mod:`ignite_cv.handlers.progress`), so the
terminal check is ours. Up to :data:`QUIET_UP_TO` images nothing is shown.
"""

from __future__ import annotations

import sys
from typing import TextIO

QUIET_UP_TO = 8


class ImageProgress:
    """``update(done)`` after each batch; ``close()`` at the end."""

    def __init__(self, total: int, stream: TextIO | None = None, use_bar: bool | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.active = total > QUIET_UP_TO
        isatty = getattr(self.stream, "isatty", None)
        self.use_bar = (bool(isatty()) if callable(isatty) else False) if use_bar is None else use_bar
        self._bar = None
        self._next_line = 0
        if self.active and self.use_bar:
            from fastprogress.fastprogress import ConsoleProgressBar

            self._bar = ConsoleProgressBar(range(total), total=total)
            self._bar.update(0)

    def update(self, done: int) -> None:
        if not self.active:
            return
        if self._bar is not None:
            self._bar.update(done)
        elif done >= self._next_line or done == self.total:
            print(f"explained {done}/{self.total} images", file=self.stream, flush=True)
            step = max(1, self.total // 10)
            self._next_line = (done // step + 1) * step

    def close(self) -> None:
        if self._bar is not None and self._bar.last_v is not None:  # the bar ends itself at the total
            self._bar.on_iter_end()
        self._bar = None
