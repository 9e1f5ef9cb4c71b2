import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ignite_cv.image_grid import (
    LINE_HEIGHT,
    MIN_CELL,
    fit_text,
    labelled_grid,
    message_picture,
    truetype_font,
    write_png,
)


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


def test_large_images_are_reduced_to_max_cell_and_small_ones_enlarged_to_min_cell():
    big = np.full((2, 3, 300, 400), 128, dtype=np.uint8)
    grid = labelled_grid(big, ["a", "b"], ncols=2, max_cell=100)
    assert grid.shape[1] == 2 * 100 + 3 * 2  # two 100-px cells and three paddings
    assert grid.shape[0] >= 75  # the height is reduced by the same factor (300 * 100 / 400)
    small = np.zeros((1, 1, 10, 10), dtype=np.uint8)
    assert labelled_grid(small, ["x"], min_cell=96).shape[1] == 100 + 2 * 2  # 10 px enlarged 10×


def test_a_truetype_label_is_cut_to_its_cell():
    images = np.zeros((1, 3, 16, 16), dtype=np.uint8)
    long = "a very long class name that cannot fit in one cell"
    grid = labelled_grid(images, [long], [False], min_cell=64, font_size=12)
    cell = 64
    label = grid[2 + cell : 2 + cell + 16].astype(int)
    assert (label[:, 2 : 2 + cell, 0] - label[:, 2 : 2 + cell, 1]).max() > 60  # red text in the cell
    assert (label[:, 2 + cell :] == 20).all()  # and none beyond it
    assert fit_text(ImageDraw.Draw(Image.new("RGB", (1, 1))), long, truetype_font(12), 64).endswith("…")


def test_a_message_picture_shows_its_text():
    picture = message_picture("no wrong predictions")
    assert picture.shape == (80, 480, 3) and (picture != 20).any()
    assert (message_picture("").astype(int) == 20).all()


def test_write_png_round_trips_and_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    picture = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    target = write_png(tmp_path / "sub" / "grid.png", picture)
    with Image.open(target) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), picture)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        write_png(target, np.zeros((2, 2, 3), dtype=np.uint8))
    monkeypatch.undo()
    with Image.open(target) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), picture)  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["grid.png"]  # no temp file left behind
