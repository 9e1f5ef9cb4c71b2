"""A progress line for long data passes: a bar redrawn in place on a terminal, plain lines otherwise.

On a terminal the line is redrawn (``\\r``) at most :data:`REDRAW_S` apart. In a file or a pipe (CI logs,
``tail -f``) it prints one line per quarter done, so a log is not flooded with updates. fastprogress is
not used here: it imports python-fasthtml at import time and treats every stream as a terminal (see
``ignite_cv.handlers.progress``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds between two redraws of the terminal bar.
REDRAW_S = 0.2
#: Character width of the terminal bar.
BAR_WIDTH = 30


class CountProgress:
    """Progress of ``total`` items labelled ``label``: call :meth:`advance` as items finish, and
    :meth:`clear` before printing anything else. ``enabled=False`` prints nothing (other ranks)."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        enabled: bool = True,
        use_bar: bool | None = None,
    ) -> None:
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled and total > 0
        isatty = getattr(self.stream, "isatty", None)
        self.use_bar = bool(isatty and isatty()) if use_bar is None else use_bar
        self.done = 0
        self.start = time.perf_counter()
        self._drawn = 0.0
        self._next_quarter = 1

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        share = self.done / self.total
        return f"{self.label}: {self.done}/{self.total} ({100 * share:.0f} %), {elapsed:.1f} s"

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        if self.use_bar:
            now = time.perf_counter()
            if now - self._drawn >= REDRAW_S or self.done >= self.total:
                filled = round(BAR_WIDTH * self.done / self.total)
                bar = "#" * filled + "-" * (BAR_WIDTH - filled)
                self.stream.write(f"\r[{bar}] {self._line()}")
                self.stream.flush()
                self._drawn = now
        elif self.done < self.total and self.done * 4 >= self._next_quarter * self.total:
            while self.done * 4 >= self._next_quarter * self.total:
                self._next_quarter += 1
            print(self._line(), file=self.stream, flush=True)

    def clear(self) -> None:
        """Erase the terminal bar, so that another message can take the line (it is redrawn on the
        next :meth:`advance`)."""
        if self.enabled and self.use_bar:
            self.stream.write("\r\033[K")
            self.stream.flush()
