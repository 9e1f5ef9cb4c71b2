"""CardInput: files decode and normalize as the checkpoint's card says, and nothing else is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.data.folder import UnreadableImage
from ignite_cv.explain.preprocess import CardInput
from tests.explain.patterns import meanstd_card


def _png(path, array: np.ndarray):
    Image.fromarray(array).save(path)
    return str(path)


def test_an_rgb_file_becomes_the_grey_input_of_a_grey_model(tmp_path):
    rgb = np.zeros((20, 10, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red: ITU-R 601 luma 76
    card = meanstd_card("tinyvgg", 1, 8, ["a", "b"])
    prepare = CardInput(card)
    image = prepare.decode(_png(tmp_path / "red.png", rgb))
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
    assert image.unique().tolist() == [76]
    x = prepare(image.unsqueeze(0))
    assert torch.allclose(x, torch.full((1, 1, 8, 8), (76 / 255 - 0.5) / 0.25))


def test_the_card_s_centre_crop_keeps_the_middle(tmp_path):
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, 10:20] = 255  # a white middle third
    path = _png(tmp_path / "wide.png", wide)
    card = meanstd_card("tinyvgg", 3, 10, ["a", "b"])
    assert CardInput(card).decode(path).float().mean() < 255 * 0.5  # stretched: the black sides stay
    card.extra["center_crop"] = True
    assert CardInput(card).decode(path).unique().tolist() == [255]  # cropped to the middle square


def test_batches_of_another_shape_are_refused_and_unreadable_files_raise(tmp_path):
    prepare = CardInput(meanstd_card("tinyvgg", 3, 8, ["a", "b"]))
    assert prepare.input_shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"uint8 \(N, 3, 8, 8\)"):
        prepare(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    bad = tmp_path / "note.png"
    bad.write_text("not an image")
    with pytest.raises(UnreadableImage, match="not a readable image"):
        prepare.decode(str(bad))
