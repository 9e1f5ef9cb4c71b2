"""The seam to ignite_cv.explain: a one-line error without it; overlays written per image with it."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.inference import cam
from ignite_cv.inference.predictor import Predictor
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import random_image


def test_without_the_explain_package_cam_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ignite_cv.explain", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"--cam needs the explain package"):
        cam.require_explain()
    assert cam.explain_available() is False


def test_the_writer_calls_cam_overlays_with_the_predicted_classes(tmp_path, monkeypatch, rgb_checkpoint):
    calls = []

    def cam_overlays(model, pipeline, images, targets, method):
        calls.append((images.shape, targets.tolist(), method, torch.is_grad_enabled()))
        return images.expand(-1, 3, -1, -1).flip(1)  # an "overlay": the image with channels reversed

    monkeypatch.setitem(sys.modules, "ignite_cv.explain", types.SimpleNamespace(cam_overlays=cam_overlays))
    predictor = Predictor.from_checkpoint(rgb_checkpoint, "cpu")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        random_image(i, size=(8, 8)).save(folder / f"{i}.png")
    writer = cam.CamWriter(predictor, "gradcam", tmp_path / "cams")
    result = predictor.predict(folder, batch_size=2, on_batch=writer)
    assert [c[1] for c in calls] == [[p.label_index for p in result][:2], [result[2].label_index]]
    assert {c[2] for c in calls} == {"gradcam"} and all(c[3] for c in calls)
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == [
        cam.cam_file_name(s) for s in sorted(result.sources)
    ]
    first = np.asarray(Image.open(tmp_path / "cams" / cam.cam_file_name(result.sources[0])))
    np.testing.assert_array_equal(first, np.asarray(random_image(0, size=(8, 8)))[..., ::-1])


def test_cam_file_names_are_flat_and_safe():
    assert cam.cam_file_name("photos/a b.jpg") == "photos_a_b.jpg.png"
    assert cam.cam_file_name("/data/x.zip::set/../y.png") == "data_x.zip_set_.._y.png.png"
    assert "/" not in cam.cam_file_name("../../etc/passwd")
