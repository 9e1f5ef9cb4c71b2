"""Progress: plain lines at every tenth when the stream is not a terminal, a redrawn bar when it is."""

from __future__ import annotations

import io

from ignite_cv.inference.progress import Progress


def test_plain_lines_in_a_file():
    stream = io.StringIO()
    progress = Progress(100, stream)
    for done in range(0, 101, 5):
        progress.update(done)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" ")[0] for line in lines] == [f"{n}/100" for n in range(10, 101, 10)]
    assert "\r" not in stream.getvalue()


def test_a_bar_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(4, stream, use_bar=True)
    for done in (2, 4):
        progress.update(done)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "4/4 images" in text
