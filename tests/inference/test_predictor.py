"""Predictor: the card drives preprocessing and the decision; unreadable files are listed; order is stable."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.inference.predictor import Predictor
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import make_checkpoint, random_image


def _folder(root, count=6):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        random_image(i, size=(12 + i, 10)).save(root / f"{i:02d}.png")
    return root


def test_a_stored_threshold_flips_the_decisions_of_a_two_class_model(tmp_path):
    images = [random_image(i) for i in range(12)]
    plain = Predictor.from_checkpoint(make_checkpoint(tmp_path / "plain.safetensors", seed=3), "cpu")
    before = plain.predict(images)
    p_dog = sorted(p.probabilities["dog"] for p in before)
    threshold = (p_dog[5] + p_dog[6]) / 2  # half the images on each side
    stored = make_checkpoint(tmp_path / "t.safetensors", seed=3, extra={"threshold": threshold})
    after = Predictor.from_checkpoint(stored, "cpu").predict(images)
    assert after.probabilities.equal(before.probabilities)
    assert [p.label for p in after] == [
        "dog" if p.probabilities["dog"] >= threshold else "cat" for p in before
    ]
    assert after.labels.count("dog") == 6
    assert after.labels != before.labels  # the threshold is not 0.5: some decisions changed
    flipped = stored.with_name("neg.safetensors")
    make_checkpoint(flipped, seed=3, extra={"threshold": 0.5, "positive_class": "cat"})
    as_cat = Predictor.from_checkpoint(flipped, "cpu").predict(images)
    assert [p.label for p in as_cat] == ["cat" if p.probabilities["cat"] >= 0.5 else "dog" for p in before]


def test_a_grey_model_given_an_rgb_file_predicts_as_on_its_grey_version(tmp_path):
    grey_model = Predictor.from_checkpoint(make_checkpoint(tmp_path / "g.safetensors", channels=1), "cpu")
    rgb = random_image(7, size=(8, 8))
    rgb.save(tmp_path / "rgb.png")
    from_file = grey_model.predict(str(tmp_path / "rgb.png"))
    from_grey = grey_model.predict(rgb.convert("L"))
    assert from_file.probabilities.equal(from_grey.probabilities)
    assert grey_model.predict(rgb).probabilities.equal(from_grey.probabilities)


def test_an_image_of_another_size_is_resized_to_the_card_size(tmp_path):
    model = Predictor.from_checkpoint(make_checkpoint(tmp_path / "m.safetensors", size=(8, 8)), "cpu")
    big = random_image(8, size=(40, 30))
    resized = big.resize((8, 8), Image.Resampling.BILINEAR)
    assert model.predict(big).probabilities.equal(model.predict(resized).probabilities)
    other = random_image(9, size=(8, 8))
    assert not model.predict(other).probabilities.equal(model.predict(resized).probabilities)


def test_every_input_type_gives_the_same_probabilities(tmp_path, rgb_checkpoint):
    model = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    img = random_image(10)
    img.save(tmp_path / "x.png")
    array = np.array(img)
    values = [
        model.predict(str(tmp_path / "x.png")).probabilities,
        model.predict(img).probabilities,
        model.predict(array).probabilities,
        model.predict(torch.from_numpy(array).permute(2, 0, 1)).probabilities,
    ]
    assert all(v.equal(values[0]) for v in values[1:])
    assert values[0].dtype == torch.float32 and values[0].shape == (1, 2)
    assert float(values[0].sum()) == pytest.approx(1.0, abs=1e-6)


def test_unreadable_files_are_listed_and_skipped_or_stop_with_strict(tmp_path, rgb_checkpoint):
    root = _folder(tmp_path / "imgs", 3)
    (root / "01b.png").write_bytes(b"\x89PNG broken")
    (root / "notes.txt").write_text("hello")
    model = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    result = model.predict([root], batch_size=2)
    assert result.sources == [f"{root}/00.png", f"{root}/01.png", f"{root}/02.png"]
    assert [p.position for p in result] == [0, 1, 3]  # 01b.png was image 2
    assert sorted((s.source, s.reason.split(" (")[0]) for s in result.skipped) == [
        (f"{root}/01b.png", "not a readable image"),
        (f"{root}/notes.txt", "not an image file"),
    ]
    with pytest.raises(UserError, match=r"cannot read image .*01b\.png: not a readable image"):
        model.predict([root], strict=True)


def test_nothing_readable_is_one_user_error(tmp_path, rgb_checkpoint):
    model = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    (tmp_path / "a.png").write_text("text")
    with pytest.raises(
        UserError, match=r"^cannot read image .*a\.png: not a readable image .*; pass image files"
    ):
        model.predict(str(tmp_path / "a.png"))
    only_text = tmp_path / "docs"
    only_text.mkdir()
    (only_text / "r.txt").write_text("x")
    with pytest.raises(UserError, match="has no image files"):
        model.predict(only_text)


def test_zip_input_equals_the_folder_and_the_order_is_stable(tmp_path, rgb_checkpoint):
    root = _folder(tmp_path / "imgs", 7)
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.iterdir(), reverse=True):  # stored in reverse order: listed sorted
            zf.write(path, f"imgs/{path.name}")
    model = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    folder = model.predict(root, batch_size=3)
    zipped = model.predict(archive, batch_size=3)
    assert [s.rsplit("/", 1)[-1] for s in zipped.sources] == [s.rsplit("/", 1)[-1] for s in folder.sources]
    assert zipped.sources[0] == f"{archive}::imgs/00.png"
    assert zipped.probabilities.equal(folder.probabilities)
    again = model.predict(root, batch_size=3, workers=2)  # decoded in worker processes
    assert again.sources == folder.sources and again.probabilities.equal(folder.probabilities)


def test_the_batch_hook_sees_model_sized_images_and_their_sources(tmp_path, rgb_checkpoint):
    root = _folder(tmp_path / "imgs", 5)
    seen = []
    model = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    result = model.predict(
        root, batch_size=2, on_batch=lambda x, p, s: seen.append((tuple(x.shape), p.shape, s))
    )
    assert [shape for shape, _, _ in seen] == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    assert [s for _, _, names in seen for s in names] == result.sources
