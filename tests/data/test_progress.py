"""The data progress line: a log line per quarter in files, a redrawn bar on terminals, silence off rank 0."""

from __future__ import annotations

import io

from ignite_cv.data.progress import CountProgress


def test_plain_lines_in_a_file():
    stream = io.StringIO()
    progress = CountProgress(100, "decoding x", stream=stream)
    for _ in range(10):
        progress.advance(10)
    progress.clear()  # nothing to erase in a file
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "decoding x: 30/100 (30 %)",
        "decoding x: 50/100 (50 %)",
        "decoding x: 80/100 (80 %)",
    ]
    assert "\r" not in stream.getvalue()


def test_bar_on_a_terminal_and_nothing_when_disabled():
    stream = io.StringIO()
    progress = CountProgress(4, "decoding", stream=stream, use_bar=True)
    progress.advance(4)
    progress.clear()
    assert stream.getvalue().startswith("\r[" + "#" * 30 + "] decoding: 4/4 (100 %)")
    assert stream.getvalue().endswith("\r\033[K")
    quiet = io.StringIO()
    off = CountProgress(4, "decoding", stream=quiet, enabled=False)
    off.advance(4)
    off.clear()
    assert quiet.getvalue() == ""
