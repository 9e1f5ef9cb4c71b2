"""Labelled grids of images as one uint8 RGB array, drawn with PIL, and PNG files of such arrays.

Every image grid ignite_cv draws goes through :func:`labelled_grid`: the validation grid in
TensorBoard during training, the test report's most confidently wrong images and the CAM grids (each
cell an image beside its overlay). Pasting images into one PIL canvas and writing the labels takes a few
milliseconds; the matplotlib figure of 32 titled images it replaced took 0.2-0.7 s on our 2-core
machine (a second of every short run's fixed cost went to the report's three grids). Charts with
axes stay matplotlib figures (:mod:`ignite_cv.figures`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ignite_cv.utils.atomic import atomic_path

#: Label colours: right and wrong predictions, and labels without a verdict.
RIGHT, WRONG, NEUTRAL = (40, 160, 40), (210, 40, 40), (230, 230, 230)
#: Background of grids and title strips.
BACKGROUND = (20, 20, 20)
#: By default cells are at least this many pixels wide (small images are enlarged, pixel-exact).
MIN_CELL = 64
#: Line height of the bitmap font (``font_size=0``), in pixels.
LINE_HEIGHT = 11
PADDING = 2


@functools.cache
def truetype_font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (matplotlib ships it) at ``size`` pixels; PIL's bitmap font where it is missing."""
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        if not path.is_file():  # a repackaged matplotlib: ask its font manager
            from matplotlib import font_manager

            path = Path(font_manager.findfont("DejaVu Sans"))
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default()


def fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` cut (with ``…``) to at most ``width`` pixels in ``font``."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def _resized(tile: Image.Image, width: int, height: int) -> Image.Image:
    if (width, height) == tile.size:
        return tile
    enlarging = width >= tile.size[0]
    return tile.resize((width, height), Image.NEAREST if enlarging else Image.BILINEAR, reducing_gap=None)


def labelled_grid(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[str],
    correct: Sequence[bool] | None = None,
    ncols: int = 8,
    min_cell: int = MIN_CELL,
    max_cell: int = 0,
    font_size: int = 0,
    padding: int = PADDING,
) -> np.ndarray:
    """Images uint8 ``(N, C, H, W)`` (C 1 or 3) in ``ncols`` columns, each with its label below it.

    Cells are ``min_cell`` pixels wide or more: smaller images are enlarged by a whole factor,
    pixel-exact; with ``max_cell`` > 0 wider ones are reduced to it (bilinear). ``font_size`` 0: PIL's
    bitmap font (TensorBoard grids), else DejaVu Sans of that many pixels; ``padding`` pixels around
    cells. A label may have several lines (``"\n"``): the first is coloured by the verdict (green when
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
    scale = float(max(1, math.ceil(min_cell / width)))
    if max_cell > 0 and width > max_cell:
        scale = max_cell / width
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))
    cols = min(ncols, count)
    rows = math.ceil(count / cols)
    font = truetype_font(font_size) if font_size > 0 else ImageFont.load_default()
    line_h = font_size + 4 if font_size > 0 else LINE_HEIGHT
    lines = [str(label).split("\n") for label in labels]
    label_h = line_h * max(len(text) for text in lines)
    step_x, step_y = cell_w + padding, cell_h + label_h + padding
    canvas = Image.new("RGB", (cols * step_x + padding, rows * step_y + padding), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index in range(count):
        x = padding + (index % cols) * step_x
        y = padding + (index // cols) * step_y
        pixels = np.repeat(array[index], 3, axis=0) if array.shape[1] == 1 else array[index]
        tile = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB")
        canvas.paste(_resized(tile, cell_w, cell_h), (x, y))
        colour = NEUTRAL if correct is None else (RIGHT if correct[index] else WRONG)
        for line_no, text in enumerate(lines[index]):
            fill = colour if line_no == 0 else NEUTRAL
            draw.text(
                (x, y + cell_h + line_no * line_h), fit_text(draw, text, font, cell_w), fill=fill, font=font
            )
    return np.asarray(canvas)


def message_picture(text: str, width: int = 480, height: int = 80, font_size: int = 14) -> np.ndarray:
    """A dark picture saying ``text``: a visible placeholder where a grid would be empty."""
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = truetype_font(font_size)
    line = fit_text(draw, text, font, width - 16)
    draw.text((width / 2, height / 2), line, fill=NEUTRAL, font=font, anchor="mm")
    return np.asarray(canvas)


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    """uint8 ``(H, W, 3)`` as a PNG, atomically (a reader never sees half a file); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG", compress_level=1)  # 3x faster than 6, ~1.3x larger
    return target
