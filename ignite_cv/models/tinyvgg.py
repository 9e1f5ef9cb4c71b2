"""TinyVGG: two VGG-style conv blocks and a linear classifier (the CNN Explainer architecture).

Each block is conv3×3 → ReLU → conv3×3 → ReLU → maxpool 2, with ``hidden_units`` channels; with
``batch_norm`` a BatchNorm follows each conv, which lets it train fast with a one-cycle schedule.
Input channels and size come from the data, so 8×8 grey, 28×28 grey and 64×64 RGB all work.
"""

from __future__ import annotations

from torch import nn

from ignite_cv.models.registry import register_model
from ignite_cv.utils.errors import UserError


def _conv_block(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class TinyVGG(nn.Module):
    #: The head (its last Linear, whose shape follows the number of classes): dropped from a weights file.
    head_key_prefixes = ("classifier.",)

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_outputs: int,
        hidden_units: int = 32,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        height, width = image_size
        if height < 4 or width < 4:
            raise UserError(
                f"TinyVGG needs images of at least 4×4 pixels (two 2× poolings), got {height}×{width}",
                "use --image-size 4 or larger",
            )
        self.block1 = _conv_block(in_channels, hidden_units, batch_norm)
        self.block2 = _conv_block(hidden_units, hidden_units, batch_norm)
        features = hidden_units * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_outputs))

    def forward(self, x):
        return self.classifier(self.block2(self.block1(x)))


@register_model("tinyvgg")
def tinyvgg(
    in_channels: int,
    image_size: tuple[int, int],
    num_outputs: int,
    hidden_units: int = 32,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> TinyVGG:
    return TinyVGG(in_channels, image_size, num_outputs, hidden_units, batch_norm, dropout)
