"""Which layer a class activation map is computed at: the candidates of a model and the automatic choice.

A CAM weighs the feature maps of one layer, so the layer must output an ``(N, C, h, w)`` map. The
candidates of a model are found by one forward pass of a blank input at the model's own input size
(forward hooks on every module, removed afterwards); modules called more than once per forward (a
ResNet block's shared ReLU) are left out, since a hook would only see their last call.

``auto`` takes the last convolutional block of the architecture:

* TinyVGG: ``block2`` (conv, conv, pool);
* ResNet-18/34/50: ``layer4``;
* AlexNet and ``alexnet_small``: the ReLU after the last convolution of ``features`` (the conv5 block
  at the conv's resolution, before its pool halves it: 13×13 instead of 6×6 at 224 px);
* pruned models: the same names (pruning removes channels, not layers).

A map of 1×1 or 2×2 can only point at a quadrant: when the image is so small that the last block's map
is under :data:`MIN_MAP_SIDE` pixels on a side (a ResNet's ``layer4`` below 128 px: 2×2 at 64 px, 1×1
at 28 px), ``auto`` steps back to the deepest block whose map is at least that large (``layer3`` at
64 px, ``layer2`` at 28 px). Other architectures get the last candidate with such a map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ignite_cv.explain.state import preserved_state
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

#: ``auto`` prefers a layer whose feature map is at least this many cells on its shorter side.
MIN_MAP_SIDE = 4

AUTO = "auto"


@dataclass(frozen=True)
class LayerInfo:
    """A candidate layer: its module name and its output's (channels, height, width)."""

    name: str
    channels: int
    height: int
    width: int

    def describe(self) -> str:
        return f"{self.name} ({self.channels}×{self.height}×{self.width})"


def list_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[LayerInfo]:
    """Every module of ``model`` that outputs one 4-D map, in forward order, for a ``(C, H, W)`` input.

    The model runs once on zeros in eval mode without gradients; its modes, flags and hooks are as
    before afterwards.
    """
    base = unwrap(model)
    calls: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []

    def record(name: str):
        def hook(_module, _inputs, output) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in shapes:
                order.append(name)
            shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else ()

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in base.named_modules() if n]
    try:
        param = next(base.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with preserved_state(base), torch.no_grad():
            base.eval()
            base(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
    layers = []
    for name in order:
        shape = shapes[name]
        if calls[name] == 1 and len(shape) == 4:
            layers.append(LayerInfo(name, shape[1], shape[2], shape[3]))
    return layers


def preferred_layers(model: nn.Module) -> list[str]:
    """The architecture's convolutional blocks, deepest first (empty for an architecture we don't know)."""
    from ignite_cv.models.alexnet import AlexNetClassifier
    from ignite_cv.models.tinyvgg import TinyVGG

    base = unwrap(model)
    if isinstance(base, TinyVGG):
        return ["block2", "block1"]
    if all(isinstance(getattr(base, f"layer{i}", None), nn.Module) for i in range(1, 5)):
        return ["layer4", "layer3", "layer2", "layer1"]  # ResNetClassifier and torchvision's ResNet
    if isinstance(base, AlexNetClassifier):
        names = []
        modules = list(base.features.named_children())
        for index, (name, module) in enumerate(modules):
            if isinstance(module, nn.Conv2d):
                after = modules[index + 1] if index + 1 < len(modules) else None
                chosen = after[0] if after is not None and isinstance(after[1], nn.ReLU) else name
                names.append(f"features.{chosen}")
        return names[::-1]
    return []


def auto_layer(model: nn.Module, layers: list[LayerInfo]) -> LayerInfo:
    """The ``auto`` choice among ``layers`` (from :func:`list_layers`), as the module docstring says."""
    by_name = {layer.name: layer for layer in layers}
    preferred = [by_name[name] for name in preferred_layers(model) if name in by_name]
    if not preferred:
        preferred = [layer for layer in reversed(layers) if layer.height * layer.width > 1]
    if not preferred:
        arch = type(unwrap(model)).__name__
        raise UserError(
            f"{arch} has no layer with a spatial feature map to explain",
            "CAMs need a convolutional model (TinyVGG, ResNet, AlexNet)",
        )
    for layer in preferred:
        if min(layer.height, layer.width) >= MIN_MAP_SIDE:
            return layer
    return max(preferred, key=lambda layer: layer.height * layer.width)  # ties: the deepest


def resolve_target_layer(model: nn.Module, name: str, input_shape: tuple[int, int, int]) -> LayerInfo:
    """The layer ``name`` (or the ``auto`` choice) of ``model``.

    Raises:
        UserError: ``name`` is not a candidate (the message lists the candidates).
    """
    layers = list_layers(model, input_shape)
    if name == AUTO:
        return auto_layer(model, layers)
    for layer in layers:
        if layer.name == name:
            return layer
    arch = type(unwrap(model)).__name__
    raise UserError(
        f"--target-layer {name!r} is not a layer of {arch} with a spatial feature map",
        f"choose auto or one of: {', '.join(layer.name for layer in layers)}",
    )
