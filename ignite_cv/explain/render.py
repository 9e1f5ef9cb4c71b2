"""Pictures of class activation maps: heat maps, overlays, titled overlays and grids.

Per-image pictures are drawn with PIL (milliseconds each; a tool may draw thousands), titles in
matplotlib's bundled DejaVu Sans. Grids are matplotlib figures without pyplot (see :mod:`ignite_cv.figures`),
for the run report, TensorBoard and the tool's ``grid.png``. Heat maps use the ``jet`` colour map that
CAM papers use: blue = no support for the class, red = the strongest.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

COLORMAP = "jet"
#: Weight of the heat map in an overlay (the image gets 1 - this).
OVERLAY_ALPHA = 0.45
#: Titled overlays are enlarged (pixel-exact for the image, bilinear for the map) to at least this side.
MIN_SIDE = 224


def to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 ``(C, H, W)`` (C 1 or 3) → ``(H, W, 3)``."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"an image must be uint8 (C, H, W) with C 1 or 3, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(
        np.repeat(array, 3, axis=0).transpose(1, 2, 0) if array.shape[0] == 1 else array.transpose(1, 2, 0)
    )


def heat_map(cam: torch.Tensor | np.ndarray) -> np.ndarray:
    """A map in [0, 1] ``(H, W)`` as colours, uint8 ``(H, W, 3)``."""
    values = (
        cam.detach().float().cpu().numpy()
        if isinstance(cam, torch.Tensor)
        else np.asarray(cam, dtype=np.float32)
    )
    rgba = colormaps[COLORMAP](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(image: torch.Tensor | np.ndarray, cam: torch.Tensor | np.ndarray) -> np.ndarray:
    """The image (uint8 ``(C, H, W)``) under its heat map (same H, W), uint8 ``(H, W, 3)``."""
    base = to_hwc(image).astype(np.float32)
    heat = heat_map(cam).astype(np.float32)
    if heat.shape != base.shape:
        raise ValueError(f"the map {heat.shape[:2]} and the image {base.shape[:2]} differ in size")
    return (base * (1.0 - OVERLAY_ALPHA) + heat * OVERLAY_ALPHA + 0.5).astype(np.uint8)


def enlarged_overlay(
    image: torch.Tensor | np.ndarray, cam: torch.Tensor | np.ndarray, min_side: int = MIN_SIDE
) -> np.ndarray:
    """:func:`overlay` at least ``min_side`` pixels on the shorter side: the image enlarged pixel-exact
    (an integer factor, nearest), the map bilinearly, so small inputs (28 px) stay legible."""
    base = to_hwc(image)
    height, width = base.shape[:2]
    factor = max(1, math.ceil(min_side / min(height, width)))
    if factor == 1:
        return overlay(image, cam)
    big = np.asarray(Image.fromarray(base).resize((width * factor, height * factor), Image.NEAREST))
    values = (
        cam.detach().float().cpu().numpy()
        if isinstance(cam, torch.Tensor)
        else np.asarray(cam, dtype=np.float32)
    )
    smooth = np.asarray(
        Image.fromarray(values.astype(np.float32), mode="F").resize(
            (width * factor, height * factor), Image.BILINEAR
        )
    )
    return overlay(big.transpose(2, 0, 1), smooth)


@functools.cache
def _font(size: int) -> ImageFont.ImageFont:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (OSError, ValueError):  # no TrueType font: PIL's bitmap font
        return ImageFont.load_default()


def titled(picture: np.ndarray, title: str) -> np.ndarray:
    """``picture`` (uint8 ``(H, W, 3)``) with ``title`` in a dark strip above it."""
    height, width = picture.shape[:2]
    size = max(10, min(16, width // 18))
    font = _font(size)
    strip = size + 8
    canvas = Image.new("RGB", (width, height + strip), (20, 20, 20))
    canvas.paste(Image.fromarray(picture), (0, strip))
    draw = ImageDraw.Draw(canvas)
    text = title
    while text and draw.textlength(text, font=font) > width - 8:
        text = text[:-2] + "…" if len(text) > 2 else ""
    draw.text((4, 3), text, fill=(240, 240, 240), font=font)
    return np.asarray(canvas)


def cam_grid_figure(
    images: torch.Tensor | np.ndarray,
    maps: torch.Tensor | np.ndarray,
    titles: Sequence[str],
    title_colors: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """A grid of image pairs, the image and its overlay, ``ncols`` pairs per row, each titled.

    ``images``: uint8 ``(N, C, H, W)``; ``maps``: ``(N, H, W)`` in [0, 1]; ``titles``: one per image (shown
    above the overlay; wrapped at about 28 characters).
    """
    count = len(images)
    if count == 0 or len(maps) != count or len(titles) != count:
        raise ValueError(
            f"need as many maps and titles as images (>= 1), got {count}, {len(maps)}, {len(titles)}"
        )
    cols = min(ncols, count)
    rows = math.ceil(count / cols)
    height, width = images.shape[2], images.shape[3]
    cell = 1.6
    fig = Figure(
        figsize=(2 * cols * cell, rows * (cell * height / width + 0.45)), dpi=100, layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for index in range(count):
        row, col = divmod(index, cols)
        picture = to_hwc(images[index])
        axes[row, 2 * col].imshow(picture, interpolation="nearest")
        axes[row, 2 * col + 1].imshow(overlay(images[index], maps[index]), interpolation="bilinear")
        color = title_colors[index] if title_colors is not None else "black"
        axes[row, 2 * col + 1].set_title(textwrap.fill(str(titles[index]), 28), fontsize=7, color=color)
    return fig


def figure_array(fig: Figure) -> np.ndarray:
    """A figure rendered to uint8 ``(H, W, 3)`` (for ``SummaryWriter.add_image(..., dataformats="HWC")``)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
