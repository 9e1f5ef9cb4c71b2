"""Preprocessing follows the card: channels, size, centre crop (card or run config), pixel limits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ignite_cv.data.folder import UnreadableImage
from ignite_cv.inference.preprocess import Preprocessing
from ignite_cv.weights import ModelCard
from tests.inference.conftest import random_image, write_png_header


def _card(channels=1, size=(6, 4), extra=None) -> ModelCard:
    return ModelCard("tinyvgg", {}, ["a", "b"], channels, list(size), 1, {"kind": "none"}, dict(extra or {}))


def test_a_grey_model_given_an_rgb_image_sees_its_luma_at_the_model_size():
    img = random_image(0, size=(12, 10))
    prep = Preprocessing.from_card(_card(channels=1, size=(6, 4)))
    tensor = prep.image(img)
    expected = np.asarray(img.convert("L").resize((4, 6), Image.Resampling.BILINEAR))
    assert tensor.shape == (1, 6, 4) and tensor.dtype.is_floating_point is False
    np.testing.assert_array_equal(tensor[0].numpy(), expected)


def test_an_rgb_model_given_a_grey_image_sees_it_repeated():
    grey = random_image(1, size=(4, 6), mode="L")
    tensor = Preprocessing.from_card(_card(channels=3, size=(6, 4))).image(grey)
    assert tensor.shape == (3, 6, 4)
    for c in range(3):
        np.testing.assert_array_equal(tensor[c].numpy(), np.asarray(grey))


def test_centre_crop_comes_from_the_card_then_the_run_config():
    img = random_image(2, size=(20, 10))  # wide: a square crop keeps the middle 10×10
    assert Preprocessing.from_card(_card(size=(5, 5))).center_crop is False
    assert Preprocessing.from_card(_card(size=(5, 5)), {"center_crop": True}).center_crop is True
    card = _card(size=(5, 5), extra={"center_crop": True})
    prep = Preprocessing.from_card(card, {"center_crop": False})
    assert prep.center_crop is True
    middle = img.convert("L").resize((5, 5), Image.Resampling.BILINEAR, box=(5, 0, 15, 10))
    np.testing.assert_array_equal(prep.image(img)[0].numpy(), np.asarray(middle))


def test_a_file_decodes_like_the_same_image_in_memory(tmp_path):
    img = random_image(3, size=(9, 7))
    img.save(tmp_path / "a.png")
    prep = Preprocessing.from_card(_card(channels=3, size=(4, 4)))
    assert prep.decode_file(str(tmp_path / "a.png")).equal(prep.image(img))


def test_pillows_decompression_bomb_guard_is_an_unreadable_reason(tmp_path):
    bomb = write_png_header(tmp_path / "bomb.png", 20_000, 20_000)
    prep = Preprocessing.from_card(_card())
    with pytest.raises(UnreadableImage, match=r"too many pixels .*400000000 pixels"):
        prep.decode_file(str(bomb))


def test_a_stricter_pixel_limit_refuses_from_the_header(tmp_path):
    big = write_png_header(tmp_path / "big.png", 300, 200)
    prep = Preprocessing.from_card(_card(), max_pixels=50_000)
    with pytest.raises(UnreadableImage, match=r"300×200 = 60000, the limit is 50000"):
        prep.decode_file(str(big))
    with pytest.raises(UnreadableImage, match="the limit is 50000"):
        prep.image(Image.new("RGB", (300, 200)))


def test_describe_names_channels_size_and_crop():
    assert Preprocessing(1, (28, 28)).describe() == "grey 28×28 (resized)"
    assert Preprocessing(3, (64, 32), center_crop=True).describe() == "RGB 64×32 (centre crop)"
