"""Pictures: colours of the heat map, overlays, titled and enlarged overlays, grids."""

from __future__ import annotations

import numpy as np
import torch

from ignite_cv.explain.render import (
    OVERLAY_ALPHA,
    cam_grid_figure,
    enlarged_overlay,
    figure_array,
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
    fig = cam_grid_figure(images, torch.rand(5, 8, 8), [f"class {i}" for i in range(5)], ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 3 * 4 and len(shown) == 10
    assert [ax.get_title() for ax in shown if ax.get_title()] == [f"class {i}" for i in range(5)]
    array = figure_array(fig)
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
