"""Pictures of class activation maps: heat maps, overlays, titled overlays and grids.

Everything is drawn with PIL (milliseconds each; a tool may draw thousands), titles in matplotlib's
bundled DejaVu Sans; grids (the run report, TensorBoard and the tool's ``grid.png``) are
:func:`ignite_cv.image_grid.labelled_grid` of image/overlay pairs. Heat maps use the ``jet`` colour map
that CAM papers use: blue = no support for the class, red = the strongest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw

from ignite_cv.image_grid import BACKGROUND, fit_text, labelled_grid, truetype_font

COLORMAP = "jet"
#: Weight of the heat map in an overlay (the image gets 1 - this).
OVERLAY_ALPHA = 0.45
#: Titled overlays are enlarged (pixel-exact for the image, bilinear for the map) to at least this side.
MIN_SIDE = 224
#: Each half of a grid cell (the image, its overlay) is enlarged to at least this side.
GRID_SIDE = 112
#: Pixels between an image and its overlay in a grid cell.
PAIR_GAP = 4
#: Pixels between grid cells (wider than the gap inside a pair, so pairs read as pairs).
CELL_GAP = 14
#: Grid cells wider than this (large inputs) are reduced to it.
GRID_MAX_CELL = 2 * 192 + PAIR_GAP
#: Grid titles, in pixels.
TITLE_PX = 12


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


def titled(picture: np.ndarray, title: str) -> np.ndarray:
    """``picture`` (uint8 ``(H, W, 3)``) with ``title`` in a dark strip above it."""
    height, width = picture.shape[:2]
    size = max(10, min(16, width // 18))
    font = truetype_font(size)
    strip = size + 8
    canvas = Image.new("RGB", (width, height + strip), BACKGROUND)
    canvas.paste(Image.fromarray(picture), (0, strip))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), fit_text(draw, title, font, width - 8), fill=(240, 240, 240), font=font)
    return np.asarray(canvas)


def cam_pair(image: torch.Tensor | np.ndarray, cam: torch.Tensor | np.ndarray, min_side: int) -> np.ndarray:
    """The image and its overlay side by side (a 4-pixel gap), each enlarged to ``min_side`` as in
    :func:`enlarged_overlay`; uint8 ``(3, H, 2W + 4)``."""
    picture = to_hwc(image)
    height, width = picture.shape[:2]
    factor = max(1, math.ceil(min_side / min(height, width)))
    big = picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture
    over = enlarged_overlay(image, cam, min_side)
    gap = np.full((big.shape[0], PAIR_GAP, 3), BACKGROUND, dtype=np.uint8)
    return np.concatenate([big, gap, over], axis=1).transpose(2, 0, 1)


def cam_grid_picture(
    images: torch.Tensor | np.ndarray,
    maps: torch.Tensor | np.ndarray,
    titles: Sequence[str],
    correct: Sequence[bool] | None = None,
    ncols: int = 4,
    min_side: int = GRID_SIDE,
) -> np.ndarray:
    """A grid of cells, each an image beside its overlay with its title below, ``ncols`` cells a row;
    uint8 ``(H, W, 3)`` (:func:`ignite_cv.image_grid.labelled_grid`: milliseconds, where a matplotlib figure
    took half a second).

    ``images``: uint8 ``(N, C, H, W)``; ``maps``: ``(N, H, W)`` in [0, 1]; ``titles``: one per image;
    ``correct``: colours the titles green (True) or red (False); None: grey.
    """
    count = len(images)
    if count == 0 or len(maps) != count or len(titles) != count:
        raise ValueError(
            f"need as many maps and titles as images (>= 1), got {count}, {len(maps)}, {len(titles)}"
        )
    pairs = np.stack([cam_pair(images[i], maps[i], min_side) for i in range(count)])
    return labelled_grid(
        pairs,
        titles,
        correct,
        ncols=ncols,
        min_cell=0,
        max_cell=GRID_MAX_CELL,
        font_size=TITLE_PX,
        padding=CELL_GAP,
    )
