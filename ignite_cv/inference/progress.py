"""Progress of a prediction over many images: a bar that redraws on a terminal, plain lines otherwise.

Written here rather than with fastprogress (a dependency of training), whose console bar treats every
stream as a terminal — in a log file it writes ``\\r``-joined updates without newlines — and which
imports python-fasthtml at import time. A dozen lines do what prediction needs.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Plain-line mode prints at every 1/LINES of the images (and at the end).
LINES = 10
_BAR_WIDTH = 30


class Progress:
    """``update(done)`` after each batch; ``close()`` at the end. Silent when ``total`` is 0."""

    def __init__(self, total: int, stream: TextIO | None = None, use_bar: bool | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.use_bar = bool(isatty and isatty()) if use_bar is None else use_bar
        self.start = time.perf_counter()
        self._step = 1  # the next line is due at step/LINES of the images
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        if not self.total:
            return
        fraction = done / self.total
        if self.use_bar:
            filled = round(_BAR_WIDTH * fraction)
            bar = "█" * filled + "·" * (_BAR_WIDTH - filled)
            self.stream.write(f"\r{bar} {self._text()}")
            self.stream.flush()
        elif done * LINES >= self._step * self.total:
            while self._step * self.total <= done * LINES:
                self._step += 1
            print(self._text(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.use_bar and self.total:
            self.stream.write("\n")
            self.stream.flush()

    def _text(self) -> str:
        seconds = time.perf_counter() - self.start
        rate = self._done / seconds if seconds > 0 else 0.0
        return f"{self._done}/{self.total} images, {rate:.0f} images/s"
