"""The classification head that replaces a pretrained network's last layer.

A head is ``Dropout → Linear`` or, with ``hidden``, ``Dropout → Linear → ReLU → Dropout → Linear``. The
hidden width follows the rule "the power of two closest to the square root of the previous layer's
width", a cheap bottleneck between the backbone's features and the logits (ResNet-18/34: 512 → 16,
ResNet-50: 2048 → 32, AlexNet: 4096 → 64).

"Closest" is measured in linear distance, ``|2**k - sqrt(width)|``: in log space the square root of an
odd power of two (512, 2048) lies exactly half-way between two powers and the rule would need a
tie-break for the two most common widths. In linear space those resolve to the lower power (√512 ≈ 22.6
is 6.6 from 16 and 9.4 from 32); an exact linear tie (e.g. √9216 = 96, half-way between 64 and 128)
goes to the larger power, which loses less information.
"""

from __future__ import annotations

import math

from torch import nn


def hidden_width(in_features: int) -> int:
    """The power of two closest (linear distance, ties to the larger) to ``sqrt(in_features)``."""
    if in_features < 1:
        raise ValueError(f"in_features must be positive, got {in_features}")
    root = math.sqrt(in_features)
    lower = 2 ** math.floor(math.log2(root))
    upper = lower * 2
    return lower if root - lower < upper - root else upper


def make_head(in_features: int, num_outputs: int, dropout: float, hidden: bool) -> nn.Sequential:
    """A new head from ``in_features`` backbone features to ``num_outputs`` logits (1 for two classes).

    ``dropout`` is the drop probability before each Linear. The Dropout module is kept even at 0 so the
    layer indices (``head.1`` or ``head.4`` for the last Linear) do not depend on it and checkpoints of
    runs with different dropout load into each other.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    width = in_features
    if hidden:
        width = hidden_width(in_features)
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)
