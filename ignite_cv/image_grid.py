"""A labelled grid of images as one uint8 RGB array, drawn with PIL (for TensorBoard during training).

The run's validation grid is drawn every few epochs while training waits, so it must be cheap: a
matplotlib figure of 32 titled images took about 0.6 s on our 2-core machine the first time
(importing matplotlib included) and 0.1-0.2 s after, longer than a whole MLP epoch on Fashion-MNIST.
Pasting the images into one PIL canvas and writing each label with PIL's built-in bitmap font
takes a few milliseconds. The test report keeps matplotlib's figures (:mod:`ignite_cv.figures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

#: Label colours: right and wrong predictions, and labels without a verdict.
RIGHT, WRONG, NEUTRAL = (40, 160, 40), (210, 40, 40), (230, 230, 230)
#: Cells are at least this many pixels wide (small images are enlarged, pixel-exact).
MIN_CELL = 64
LINE_HEIGHT = 11
PADDING = 2


def labelled_grid(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[str],
    correct: Sequence[bool] | None = None,
    ncols: int = 8,
) -> np.ndarray:
    """Images uint8 ``(N, C, H, W)`` (C 1 or 3) in ``ncols`` columns, each with its label below it.

    A label may have several lines (``"\n"``): the first is coloured by the verdict (green when
    ``correct[i]``, red when not), the others are grey; lines longer than a cell are cut. Returns
    ``(height, width, 3)`` uint8 on a dark background."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, C, H, W) with C 1 or 3, got {array.dtype} {array.shape}")
    count = array.shape[0]
    if count == 0:
        raise ValueError("no images to draw")
    if len(labels) != count or (correct is not None and len(correct) != count):
        raise ValueError(f"{count} images need {count} labels (and verdicts)")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    height, width = array.shape[2:]
    scale = max(1, math.ceil(MIN_CELL / width))
    cell_w, cell_h = width * scale, height * scale
    cols = min(ncols, count)
    rows = math.ceil(count / cols)
    lines = [str(label).split("\n") for label in labels]
    label_h = LINE_HEIGHT * max(len(text) for text in lines)
    step_x, step_y = cell_w + PADDING, cell_h + label_h + PADDING
    canvas = Image.new("RGB", (cols * step_x + PADDING, rows * step_y + PADDING), (20, 20, 20))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    chars = max(1, cell_w // 6)  # the default bitmap font is about 6 pixels per character
    for index in range(count):
        x = PADDING + (index % cols) * step_x
        y = PADDING + (index // cols) * step_y
        pixels = np.repeat(array[index], 3, axis=0) if array.shape[1] == 1 else array[index]
        tile = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB")
        canvas.paste(tile.resize((cell_w, cell_h), Image.NEAREST), (x, y))
        colour = NEUTRAL if correct is None else (RIGHT if correct[index] else WRONG)
        for line_no, text in enumerate(lines[index]):
            fill = colour if line_no == 0 else NEUTRAL
            draw.text((x, y + cell_h + line_no * LINE_HEIGHT), text[:chars], fill=fill, font=font)
    return np.asarray(canvas)
