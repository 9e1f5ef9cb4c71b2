"""``from ignite_cv import load_model, predict``: lazy, and the same answers as the Predictor."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import ignite_cv
from ignite_cv.inference.api import predict
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import load_model as load_weights
from tests.inference.conftest import random_image
from tests.recipe_utils import REPO


def test_import_ignite_cv_does_not_import_torch_until_predict_is_used():
    code = (
        "import sys, ignite_cv; assert 'torch' not in sys.modules, 'torch imported';"
        "from ignite_cv import load_model, predict; assert 'torch' in sys.modules;"
        "print(load_model.__module__, predict.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ignite_cv.inference.api", "ignite_cv.inference.api"]
    assert "load_model" in dir(ignite_cv)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = ignite_cv.nothing


def test_a_path_a_loaded_model_and_a_model_card_pair_agree(rgb_checkpoint):
    img = random_image(4)
    loaded = ignite_cv.load_model(rgb_checkpoint, device="cpu")
    by_model = ignite_cv.predict(loaded, img)
    by_path = predict(rgb_checkpoint, img, device="cpu")
    by_pair = predict(load_weights(rgb_checkpoint), img)
    assert by_model.probabilities.equal(by_path.probabilities)
    assert by_model.probabilities.equal(by_pair.probabilities)
    only = by_model[0]
    assert only.source == "<image 0>" and only.label in ("cat", "dog")
    assert only.probability == max(only.probabilities.values())
    assert only.top(1) == [(only.label, only.probability)]


def test_a_bare_module_is_refused_with_the_fix():
    with pytest.raises(UserError, match=r"got a Linear as the model; pass load_model\(path\)"):
        predict(torch.nn.Linear(2, 2), random_image(0))
