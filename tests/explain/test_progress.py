"""Progress: nothing for a few images, a plain line per tenth when stdout is not a terminal."""

from __future__ import annotations

import io

from ignite_cv.explain.progress import ImageProgress


def test_few_images_print_nothing():
    stream = io.StringIO()
    progress = ImageProgress(8, stream)
    progress.update(8)
    progress.close()
    assert stream.getvalue() == ""


def test_plain_lines_every_tenth_and_at_the_end():
    stream = io.StringIO()
    progress = ImageProgress(100, stream)
    assert progress.use_bar is False
    for done in range(32, 101, 32):
        progress.update(done)
    progress.update(100)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "explained 32/100 images",
        "explained 64/100 images",
        "explained 96/100 images",
        "explained 100/100 images",
    ]
