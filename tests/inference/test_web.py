"""The app's answer to an upload (no server needed): the same probabilities as predict(), or a message."""

from __future__ import annotations

from PIL import Image

from ignite_cv.inference.predictor import Predictor
from ignite_cv.inference.web import classify_upload, decision_text
from tests.inference.conftest import make_checkpoint, random_image, write_png_header


def test_an_upload_gets_the_probabilities_of_predict(tmp_path, rgb_checkpoint):
    predictor = Predictor.from_checkpoint(rgb_checkpoint, "cpu", max_pixels=Image.MAX_IMAGE_PIXELS)
    random_image(3, size=(500, 300)).save(tmp_path / "up.png")
    answer = classify_upload(predictor, str(tmp_path / "up.png"))
    expected = predictor.predict(str(tmp_path / "up.png"))[0]
    assert answer["probabilities"] == expected.probabilities and answer["message"] == ""
    assert list(answer["label"]) == [name for name, _ in expected.top(5)]
    assert answer["preview"].size == (384, 230)  # shrunk to fit 384 px
    assert answer["decision"].startswith(f"**Decision: {expected.label}** — P(dog) = ")


def test_bad_uploads_get_a_message(tmp_path, rgb_checkpoint):
    predictor = Predictor.from_checkpoint(rgb_checkpoint, "cpu", max_pixels=Image.MAX_IMAGE_PIXELS)
    (tmp_path / "notes.txt").write_text("not an image")
    bomb = write_png_header(tmp_path / "huge.png", 20_000, 20_000)
    assert classify_upload(predictor, None)["message"] == "Upload or drop an image to classify it."
    text = classify_upload(predictor, str(tmp_path / "notes.txt"))
    assert text["message"].startswith(
        "**Cannot classify notes.txt:** cannot read image notes.txt: not a readable"
    )
    assert text["label"] == {} and text["preview"] is None
    huge = classify_upload(predictor, str(bomb))["message"]
    assert "too many pixels (Image size (400000000 pixels) exceeds limit" in huge and "downscale it" in huge
    write_png_header(tmp_path / "big.png", 10_000, 10_000)  # below Pillow's refusal, above its limit
    big = classify_upload(predictor, str(tmp_path / "big.png"))["message"]
    assert "too many pixels (10000×10000 = 100000000, the limit is 89478485)" in big


def test_the_decision_line_of_a_multi_class_model(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "m.safetensors", classes=("a", "b", "c"))
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    prediction = predictor.predict(random_image(0))[0]
    assert decision_text(predictor, prediction) == (
        f"**Prediction: {prediction.label}** (probability {prediction.probability:.4f})"
    )
