"""Per-layer feature maps: the activations of named layers for one input, drawn as a grid of channels.

The activations come from torchvision's ``create_feature_extractor`` (an FX trace of the model that shares
its parameters); a layer is any node name of ``get_graph_node_names`` or a module name (the output of the
module's last node), e.g. ``block1``, ``layer3.1`` or ``features.7``. Tracing switches the model between
train and eval mode, so it runs inside :func:`~ignite_cv.explain.state.preserved_state`.

Each channel is scaled to [0, 1] on its own (``viridis``; a constant channel is dark) and enlarged
pixel-exact; at most :data:`MAX_CHANNELS` channels are drawn, the first ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from torch import nn

from ignite_cv.explain.render import titled
from ignite_cv.explain.state import preserved_state
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

MAX_CHANNELS = 64
COLUMNS = 8
#: Each channel's tile is enlarged to at least this many pixels on its shorter side.
MIN_TILE = 48


def _node_names(model: nn.Module) -> list[str]:
    from torchvision.models.feature_extraction import get_graph_node_names

    with preserved_state(model):
        return get_graph_node_names(model)[1]


def check_feature_layers(model: nn.Module, names: list[str]) -> None:
    """A one-line :class:`UserError` for a name that is neither a graph node nor a module of ``model``."""
    if not names:
        return
    base = unwrap(model)
    nodes = _node_names(base)
    modules = {name for name, _ in base.named_modules() if name}
    for name in names:
        if name not in nodes and not any(node.startswith(f"{name}.") for node in nodes):
            listed = [
                n
                for n in dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else n for n in nodes)
                if n in modules
            ]
            raise UserError(
                f"--feature-maps {name!r} is not a layer of {type(base).__name__}",
                f"choose from: {', '.join(listed)} (or a node name, see --list-layers)",
            )


def feature_maps(model: nn.Module, inputs: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The activations ``(N, C, h, w)`` of each layer in ``names`` for ``inputs`` (the model's float input).

    Raises:
        UserError: a layer whose output is not a 4-D feature map (a linear layer, say).
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    base = unwrap(model)
    with preserved_state(base), torch.no_grad():
        extractor = create_feature_extractor(base, return_nodes={name: name for name in names})
        extractor.eval()
        outputs = extractor(inputs)
    for name, value in outputs.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 4:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UserError(
                f"--feature-maps {name!r} outputs {shape}, not feature maps", "choose a convolutional layer"
            )
    return {name: outputs[name].detach() for name in names}


def feature_maps_picture(activations: torch.Tensor, name: str) -> np.ndarray:
    """One input's activations ``(C, h, w)`` as a titled grid of channels, uint8 ``(H, W, 3)``."""
    values = activations.detach().float().cpu()[:MAX_CHANNELS]
    channels, height, width = values.shape
    low = values.flatten(1).amin(1).view(-1, 1, 1)
    span = values.flatten(1).amax(1).view(-1, 1, 1) - low
    scaled = torch.where(span > 0, (values - low) / span.clamp_min(1e-12), torch.zeros_like(values))
    colours = (colormaps["viridis"](scaled.numpy())[..., :3] * 255 + 0.5).astype(np.uint8)
    factor = max(1, math.ceil(MIN_TILE / min(height, width)))
    tile_h, tile_w, gap = height * factor, width * factor, 2
    cols = min(COLUMNS, channels)
    rows = math.ceil(channels / cols)
    canvas = np.full((rows * (tile_h + gap) + gap, cols * (tile_w + gap) + gap, 3), 20, dtype=np.uint8)
    for index in range(channels):
        row, col = divmod(index, cols)
        tile = np.asarray(Image.fromarray(colours[index]).resize((tile_w, tile_h), Image.NEAREST))
        y, x = gap + row * (tile_h + gap), gap + col * (tile_w + gap)
        canvas[y : y + tile_h, x : x + tile_w] = tile
    total = activations.shape[0]
    shown = f"first {channels} of {total}" if total > channels else f"{total}"
    return titled(canvas, f"{name}: {shown} channels, {height}×{width}")
