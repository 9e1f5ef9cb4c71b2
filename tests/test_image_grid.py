import numpy as np
import pytest
import torch

from ignite_cv.image_grid import LINE_HEIGHT, MIN_CELL, labelled_grid


def test_grey_images_are_tiled_enlarged_and_labelled_in_their_verdicts_colour():
    images = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    images[1] = 255  # the second image is white
    grid = labelled_grid(images, ["a\na", "b\na", "c\nc"], [True, False, True], ncols=2)
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    cell = MIN_CELL  # 8 px enlarged 8× to 64 px
    assert grid.shape[1] >= 2 * cell and grid.shape[0] >= 2 * cell  # 2 columns, 2 rows
    white = (grid == 255).all(axis=2)
    assert white.sum() == cell * cell  # exactly the second image, enlarged pixel-exact
    strip = slice(2 + cell, 2 + cell + LINE_HEIGHT)  # the first label line of the first row
    right = grid[strip, 2 : 2 + cell].astype(int)
    wrong = grid[strip, 4 + cell : 4 + 2 * cell].astype(int)
    assert (right[..., 1] - right[..., 0]).max() > 60  # green text
    assert (wrong[..., 0] - wrong[..., 1]).max() > 60  # red text


def test_rgb_pixels_are_kept():
    images = np.zeros((1, 3, 64, 64), dtype=np.uint8)
    images[0, 0] = 200  # red channel
    grid = labelled_grid(images, ["x"])
    assert (grid[2:66, 2:66] == [200, 0, 0]).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8"):
        labelled_grid(np.zeros((1, 1, 4, 4), dtype=np.float32), ["x"])
    with pytest.raises(ValueError, match="1 images need 1 labels"):
        labelled_grid(np.zeros((1, 1, 4, 4), dtype=np.uint8), ["x", "y"])
