"""Target layers: the candidates of each architecture, the automatic choice, and unknown names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ignite_cv.explain.layers import (
    LayerInfo,
    auto_layer,
    list_layers,
    preferred_layers,
    resolve_target_layer,
)
from ignite_cv.models import build_model
from ignite_cv.utils.errors import UserError


@pytest.mark.parametrize(
    ("arch", "channels", "size", "expected"),
    [
        ("tinyvgg", 1, 28, LayerInfo("block2", 32, 7, 7)),
        ("tinyvgg", 3, 64, LayerInfo("block2", 32, 16, 16)),
        ("resnet18", 3, 224, LayerInfo("layer4", 512, 7, 7)),
        ("resnet18", 3, 64, LayerInfo("layer3", 256, 4, 4)),  # layer4 would be 2×2
        ("resnet18", 1, 28, LayerInfo("layer2", 128, 4, 4)),  # layer4 1×1, layer3 2×2
        ("alexnet", 3, 224, LayerInfo("features.11", 256, 13, 13)),  # conv5's ReLU, before the 6×6 pool
        ("alexnet_small", 3, 32, LayerInfo("features.11", 256, 8, 8)),
    ],
)
def test_auto_takes_the_last_conv_block_with_a_map_of_at_least_4x4(arch, channels, size, expected):
    model = build_model(arch, channels, (size, size), 3)
    assert resolve_target_layer(model, "auto", (channels, size, size)) == expected


def test_an_image_too_small_for_any_4x4_map_takes_the_largest_map():
    model = build_model("tinyvgg", 1, (4, 4), 3, hidden_units=4)
    assert resolve_target_layer(model, "auto", (1, 4, 4)) == LayerInfo("block1", 4, 2, 2)


def test_a_pruned_model_keeps_its_layer_names_with_fewer_channels():
    import ignite_cv.prune.core as pruning

    torch.manual_seed(0)
    model = build_model("tinyvgg", 3, (32, 32), 4, hidden_units=16).eval()
    pruning.prune(model, torch.zeros(1, 3, 32, 32), ratio=0.5)
    layer = resolve_target_layer(model, "auto", (3, 32, 32))
    assert (layer.name, layer.height, layer.width) == ("block2", 8, 8)
    assert layer.channels == model.block2[3].out_channels < 16


def test_candidates_are_4d_maps_in_forward_order_without_shared_modules():
    model = build_model("resnet18", 3, (64, 64), 2)
    names = [layer.name for layer in list_layers(model, (3, 64, 64))]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert names.index("layer1") < names.index("layer2") < names.index("layer4")
    assert "layer4.1.conv2" in names
    assert "layer4.1.relu" not in names  # a BasicBlock calls its ReLU twice: a hook would see one call
    assert "avgpool" in names and "head" not in names and "head.1" not in names  # (N, 512) is not a map


def test_listing_leaves_modes_and_hooks_as_they_were():
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4)
    model.train()
    model.block1.eval()
    modes = [m.training for m in model.modules()]
    list_layers(model, (1, 16, 16))
    assert [m.training for m in model.modules()] == modes
    assert all(not m._forward_hooks for m in model.modules())


def test_a_named_layer_is_used_and_an_unknown_one_lists_the_candidates():
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4)
    assert resolve_target_layer(model, "block1.3", (1, 16, 16)) == LayerInfo("block1.3", 4, 16, 16)
    with pytest.raises(UserError) as err:
        resolve_target_layer(model, "layer4", (1, 16, 16))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("--target-layer 'layer4' is not a layer of TinyVGG with a spatial feature map")
    assert message.endswith(
        "choose auto or one of: " + ", ".join(layer.name for layer in list_layers(model, (1, 16, 16)))
    )
    assert "block2" in message


def test_an_unknown_architecture_gets_its_last_spatial_map():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    assert preferred_layers(model) == []
    assert resolve_target_layer(model, "auto", (1, 12, 12)) == LayerInfo("2", 4, 8, 8)


def test_a_model_without_spatial_layers_is_a_one_line_error():
    model = build_model("mlp", 1, (8, 8), 3)
    layers = list_layers(model, (1, 8, 8))
    with pytest.raises(UserError, match="has no layer with a spatial feature map"):
        auto_layer(model, layers)
