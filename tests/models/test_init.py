"""--init: the initial std of every conv/linear weight matches its formula; biases zero; BN untouched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ignite_cv.models import build_model
from ignite_cv.models.init import INITIALIZED_LAYERS, initialize, target_std
from ignite_cv.utils.errors import UserError

MODELS = [("mlp", 1, (8, 8), 10), ("tinyvgg", 1, (28, 28), 10), ("resnet18", 3, (32, 32), 2)]


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, INITIALIZED_LAYERS)]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = weight[0][0].numel()
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
@pytest.mark.parametrize("scheme", ["kaiming", "xavier"])
@pytest.mark.parametrize(("name", "channels", "size", "outputs"), MODELS)
def test_initial_weight_std_matches_the_formula(name, channels, size, outputs, scheme, distribution):
    torch.manual_seed(0)
    model = build_model(name, channels, size, outputs)
    count = initialize(model, scheme, distribution)
    layers = _layers(model)
    assert count == len(layers) > 0
    for layer_name, layer in layers:
        fan_in, fan_out = _fans(layer.weight)  # computed here, independently of torch.nn.init
        kaiming = math.sqrt(2.0) / math.sqrt(fan_in)
        expected = kaiming if scheme == "kaiming" else math.sqrt(2 / (fan_in + fan_out))
        assert target_std(layer.weight, scheme) == pytest.approx(expected)
        std = layer.weight.std().item()
        assert abs(std / expected - 1) < 0.10, (layer_name, std, expected)
        assert abs(layer.weight.mean().item()) < 0.1 * expected, layer_name
        if distribution == "uniform":  # all within the bound sqrt(3)·std
            assert layer.weight.abs().max().item() <= math.sqrt(3) * expected * (1 + 1e-6)
        if layer.bias is not None:
            assert torch.count_nonzero(layer.bias).item() == 0
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_default_leaves_pytorch_init_untouched():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (28, 28), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert initialize(model, "default") == 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # PyTorch's own init is not Kaiming-normal: the test above could tell them apart (std ratio sqrt(6)).
    name, conv = _layers(model)[1]
    ratio = target_std(conv.weight, "kaiming") / conv.weight.std().item()
    assert 2.0 < ratio < 3.0, (name, ratio)


def test_initialize_touches_only_the_module_given():
    torch.manual_seed(0)
    model = build_model("resnet18", 3, (32, 32), 2)
    backbone = model.conv1.weight.clone()
    initialize(model.head, "xavier")
    assert torch.equal(model.conv1.weight, backbone)
    head_linear = _layers(model.head)[-1][1]
    assert torch.count_nonzero(head_linear.bias).item() == 0


@pytest.mark.parametrize(("scheme", "distribution"), [("he", "normal"), ("kaiming", "gaussian")])
def test_unknown_choice_is_a_one_line_error(scheme, distribution):
    with pytest.raises(UserError, match="choose one of") as err:
        initialize(nn.Linear(2, 2), scheme, distribution)
    assert "\n" not in str(err.value)
