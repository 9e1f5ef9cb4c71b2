"""Pictures: colours of the heat map, overlays, titled and enlarged overlays, grids."""

from __future__ import annotations

import numpy as np
import torch

from ignite_cv.explain.render import (
    CELL_GAP,
    GRID_SIDE,
    OVERLAY_ALPHA,
    PAIR_GAP,
    cam_grid_picture,
    enlarged_overlay,
    heat_map,
    overlay,
    titled,
)


def test_the_heat_map_runs_from_blue_to_red():
    colours = heat_map(torch.tensor([[0.0, 1.0]]))
    assert colours.shape == (1, 2, 3) and colours.dtype == np.uint8
    (low, high) = colours[0]
    assert low[2] > 100 and low[0] == 0  # jet starts dark blue
    assert high[0] > 100 and high[2] == 0  # and ends dark red


def test_an_overlay_blends_the_grey_image_and_the_map():
    image = torch.full((1, 2, 2), 200, dtype=torch.uint8)
    cam = torch.zeros(2, 2)
    blended = overlay(image, cam)
    expected = np.round(200 * (1 - OVERLAY_ALPHA) + heat_map(cam).astype(float) * OVERLAY_ALPHA - 1e-9)
    assert blended.shape == (2, 2, 3)
    assert np.abs(blended.astype(float) - expected).max() <= 1


def test_small_images_are_enlarged_by_a_whole_factor_and_titled():
    picture = enlarged_overlay(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.rand(28, 28))
    assert picture.shape == (224, 224, 3)  # 8 × 28
    with_title = titled(picture, "PNEUMONIA p=0.97")
    assert with_title.shape[1] == 224 and with_title.shape[0] > 224
    assert (with_title[:4] == 20).all()  # the dark strip above the picture
    assert enlarged_overlay(torch.zeros(1, 30, 20, dtype=torch.uint8), torch.rand(30, 20)).shape == (
        360,
        240,
        3,
    )


def test_a_grid_has_an_image_and_its_overlay_per_cell():
    images = torch.zeros(5, 1, 8, 8, dtype=torch.uint8)
    images[3] = 255  # the fourth image is white
    maps = torch.zeros(5, 8, 8)
    grid = cam_grid_picture(images, maps, [f"class {i}" for i in range(5)], [True] * 5, ncols=2)
    side = GRID_SIDE  # 8 px enlarged 14× to 112 px
    cell_w = 2 * side + PAIR_GAP
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    assert grid.shape[1] == 2 * cell_w + 3 * CELL_GAP  # two cells a row and three gaps
    white = (grid == 255).all(axis=2)
    assert white.sum() == side * side  # the white image once, pixel-exact; its overlay is tinted
    ys, xs = np.nonzero(white)
    assert xs.min() == CELL_GAP + cell_w + CELL_GAP  # second column
    overlay_pixel = grid[ys.min() + 5, xs.min() + side + PAIR_GAP + 5]  # inside the white image's overlay
    assert (overlay_pixel != 255).any()  # the overlay is tinted, not the image
    title = grid[ys.max() + 1 : ys.max() + 17, xs.min() : xs.min() + cell_w].astype(int)
    assert (title[..., 1] - title[..., 0]).max() > 60  # its title, below it, is green (right)
