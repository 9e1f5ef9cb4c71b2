"""Structured pruning: shapes, targets, frozen parameters, pickle-free save and reload, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ignite_cv.profile.model import count_macs_params
from ignite_cv.prune.core import (
    INFO_KEY,
    classifier_layers,
    example_input_for,
    prune,
    pruned_card,
    save_pruned,
)
from ignite_cv.prune.history import HISTORY_KEY
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import load_model
from tests.prune.prune_models import conv_linear_widths, model_and_card

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("arch", ["mlp", "tinyvgg", "alexnet_small"])  # ResNet-18: the fresh-process test
def test_prune_half_the_channels_then_save_and_reload(arch, tmp_path):
    model, card = model_and_card(arch)
    example = example_input_for(card)
    before = conv_linear_widths(model)
    result = prune(model, example, ratio=0.5)
    after = conv_linear_widths(model)
    head = classifier_layers(model, example)[0]
    head_name = next(n for n, m in model.named_modules() if m is head)
    # The classifier keeps its outputs; hidden layers lose about half their output channels.
    assert after[head_name][1] == 4
    shrunk = [n for n in before if n != head_name and after[n][1] < before[n][1]]
    assert shrunk and all(after[n][1] == before[n][1] // 2 for n in shrunk)
    assert result.macs_after < result.macs_before and result.params_after < result.params_before
    assert (result.macs_after, result.params_after) == count_macs_params(model, example)
    json.dumps(result.history)  # plain JSON

    x = torch.randn(3, card.in_channels, *card.image_size)
    expected = model(x)
    path = tmp_path / "pruned.safetensors"
    new_card = save_pruned(path, model, card, result)
    assert new_card.extra[HISTORY_KEY] == result.history and new_card.extra[INFO_KEY][0]["ratio"] == 0.5
    reloaded, reloaded_card = load_model(path)
    assert reloaded_card.extra[HISTORY_KEY] == result.history
    torch.testing.assert_close(reloaded(x), expected)


def test_target_macs_and_speedup_reach_the_target_with_the_smallest_ratio():
    model, card = model_and_card("tinyvgg")
    example = example_input_for(card)
    macs = count_macs_params(model, example)[0]
    by_speedup = prune(model, example, speedup=2.0)
    assert by_speedup.macs_after <= macs / 2 and by_speedup.mac_reduction >= 2.0
    # One channel per layer fewer removed (8 channels: 1/8 of the ratio) would not have reached the target.
    fresh, _ = model_and_card("tinyvgg")
    smaller = prune(fresh, example, ratio=by_speedup.ratio - 1 / 8)
    assert smaller.macs_after > macs / 2

    fresh, _ = model_and_card("tinyvgg")
    by_target = prune(fresh, example, target_macs=macs * 0.6, global_pruning=True)
    assert by_target.macs_after <= macs * 0.6 and by_target.global_pruning


def test_frozen_parameters_are_traced_and_stay_frozen(tmp_path):
    model, card = model_and_card("resnet18")
    frozen = [model.conv1, model.bn1, model.layer1]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    model.train()
    result = prune(model, example_input_for(card), ratio=0.5)
    # Without gradients while tracing, layer1's convs would be pruned apart from their BatchNorms.
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 4)
    assert model.layer1[0].conv1.out_channels == 32 and model.layer1[0].bn1.num_features == 32
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert model.training and model.layer1.training  # modes restored too
    assert all(p.grad is None for p in model.parameters())
    save_pruned(tmp_path / "m.safetensors", model, card, result)
    reloaded, _ = load_model(tmp_path / "m.safetensors")
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    torch.testing.assert_close(reloaded(x), model(x))


def test_taylor_and_bn_scale_importances_and_iterative_steps():
    model, card = model_and_card("tinyvgg")
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 4, (16,))
    calls = []

    def loss_fn(m: nn.Module) -> torch.Tensor:
        calls.append(1)
        return nn.functional.cross_entropy(m(x), y)

    taylor = prune(
        model, example_input_for(card), importance="taylor", ratio=0.5, iterative_steps=2, loss_fn=loss_fn
    )
    assert taylor.iterative_steps == 2 and len(calls) == 2  # gradients recomputed before each step
    assert model.block1[0].out_channels == 4
    model, _ = model_and_card("tinyvgg")
    bn = prune(model, example_input_for(card), importance="bn-scale", ratio=0.25)
    assert bn.macs_after < bn.macs_before


def test_a_pruned_model_can_be_pruned_again_and_reloads(tmp_path):
    model, card = model_and_card("tinyvgg")
    example = example_input_for(card)
    first = prune(model, example, ratio=0.25)
    card = pruned_card(card, first)
    second = prune(model, example, ratio=0.5, global_pruning=True)
    save_pruned(tmp_path / "twice.safetensors", model, card, second)
    reloaded, reloaded_card = load_model(tmp_path / "twice.safetensors")
    assert reloaded_card.extra[HISTORY_KEY] == first.history + second.history
    assert len(reloaded_card.extra[INFO_KEY]) == 2
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(reloaded(x), model(x))


def test_ratio_outside_the_open_unit_interval_is_refused():
    model, card = model_and_card("tinyvgg")
    for bad in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(UserError, match=r"outside \(0, 1\)"):
            prune(model, example_input_for(card), ratio=bad)
    with pytest.raises(UserError, match="exactly one of"):
        prune(model, example_input_for(card), ratio=0.5, speedup=2.0)
    with pytest.raises(UserError, match="greater than 1"):
        prune(model, example_input_for(card), speedup=0.5)
    with pytest.raises(UserError, match="already has"):
        prune(model, example_input_for(card), target_macs=10**9)


def test_removing_every_channel_of_a_layer_is_refused_and_the_model_is_untouched():
    model, card = model_and_card("tinyvgg")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match="would remove every channel of block1.0"):
        prune(model, example_input_for(card), ratio=0.95)  # 8 channels × 0.05 → none left
    with pytest.raises(UserError, match="every channel|cannot be reached"):
        prune(model, example_input_for(card), speedup=10_000)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_importance_needs_what_it_ranks_by():
    model, card = model_and_card("alexnet_small")
    with pytest.raises(UserError, match="bn-scale needs BatchNorm"):
        prune(model, example_input_for(card), importance="bn-scale", ratio=0.5)
    with pytest.raises(UserError, match="taylor needs batches"):
        prune(model, example_input_for(card), importance="taylor", ratio=0.5)
    with pytest.raises(UserError, match="unknown --importance"):
        prune(model, example_input_for(card), importance="l1", ratio=0.5)


class _NoGradInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3), nn.Linear(8, 3)

    def forward(self, x):
        x = self.conv1(x)
        with torch.no_grad():
            x = self.conv2(x)
        return self.fc(x.mean((2, 3)))


class _UnwrappedParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.mix, self.fc = nn.Conv2d(1, 8, 3), nn.Parameter(torch.randn(8, 8)), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)) @ self.mix)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("model_cls", [_NoGradInside, _UnwrappedParameter])
def test_an_architecture_torch_pruning_cannot_trace_gives_a_one_line_error(model_cls):
    with pytest.raises(UserError) as info:
        prune(model_cls(), torch.zeros(1, 1, 8, 8), ratio=0.5)
    assert "torch-pruning" in str(info.value) and "\n" not in str(info.value)
