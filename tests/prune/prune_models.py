"""Small but real models of the four architecture families, shared by the pruning tests."""

from __future__ import annotations

import torch
from torch import nn

from ignite_cv.models import build_model
from ignite_cv.weights import ModelCard

#: ``arch: (builder args, channels, image size)``.
ARCHS = {
    "mlp": ({"hidden_sizes": [64, 32]}, 1, 8),
    "tinyvgg": ({"hidden_units": 8}, 1, 8),
    "alexnet_small": ({}, 3, 16),
    "resnet18": ({}, 3, 16),
}


def model_and_card(arch: str, seed: int = 0) -> tuple[nn.Module, ModelCard]:
    """A seeded 4-class model of ``arch`` in eval mode and its card."""
    args, channels, size = ARCHS[arch]
    torch.manual_seed(seed)
    model = build_model(arch, channels, (size, size), 4, **args).eval()
    card = ModelCard(arch, args, ["a", "b", "c", "d"], channels, [size, size], 4, {"kind": "none"})
    return model, card


def conv_linear_widths(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``name: (in, out)`` of every convolution and linear layer."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = (m.in_channels, m.out_channels)
        elif isinstance(m, nn.Linear):
            out[name] = (m.in_features, m.out_features)
    return out
