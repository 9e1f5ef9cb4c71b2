"""Feature maps: torchvision's extractor returns each named layer's activations; names are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ignite_cv.explain.feature_maps import (
    MAX_CHANNELS,
    check_feature_layers,
    feature_maps,
    feature_maps_picture,
)
from ignite_cv.models import build_model
from ignite_cv.utils.errors import UserError


def _hooked(model, x, name):
    seen = {}
    handle = dict(model.named_modules())[name].register_forward_hook(
        lambda m, i, o: seen.setdefault("out", o)
    )
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["out"]


def test_the_activations_are_the_layers_outputs_and_modes_stay():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4)
    model.train()
    model.block1.eval()
    modes = [m.training for m in model.modules()]
    x = torch.randn(2, 1, 16, 16)
    maps = feature_maps(model, x, ["block1", "block2.3"])
    assert [m.training for m in model.modules()] == modes
    model.eval()
    assert torch.equal(maps["block1"], _hooked(model, x, "block1"))
    assert torch.equal(maps["block2.3"], _hooked(model, x, "block2.3"))


def test_unknown_layers_and_flat_outputs_are_one_line_errors():
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4)
    check_feature_layers(model, ["block1", "block2.0", "classifier"])
    with pytest.raises(
        UserError, match=r"--feature-maps 'layer9' is not a layer of TinyVGG; choose from: block1"
    ):
        check_feature_layers(model, ["layer9"])
    with pytest.raises(UserError, match=r"--feature-maps 'classifier' outputs \(1, 3\), not feature maps"):
        feature_maps(model, torch.zeros(1, 1, 16, 16), ["classifier"])


def test_the_picture_has_a_tile_per_channel_up_to_the_limit():
    few = feature_maps_picture(torch.rand(3, 4, 4), "block1")
    many = feature_maps_picture(torch.rand(100, 4, 4), "layer2")
    assert few.dtype == np.uint8 and few.shape[2] == 3
    tile = 48 + 2  # 4 px enlarged 12× to 48, plus the gap
    assert few.shape[1] == 3 * tile + 2 and many.shape[1] == 8 * tile + 2
    extra_rows = MAX_CHANNELS // 8 - 1  # 8 rows of 8 against 1 row (the title strips differ by a few px)
    assert extra_rows * tile <= many.shape[0] - few.shape[0] <= extra_rows * tile + 8
