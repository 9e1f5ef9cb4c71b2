"""Multi-layer perceptron: flatten → [Linear → (BatchNorm) → ReLU → (Dropout)]* → Linear."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ignite_cv.models.registry import register_model


class MLP(nn.Sequential):
    """A fully connected classifier on flattened images, He (Kaiming) initialised for ReLU."""

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        hidden_sizes: Sequence[int] = (512, 256),
        batch_norm: bool = True,
        dropout: float = 0.2,
    ) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_outputs))
        super().__init__(*layers)
        #: The head (the last Linear, whose shape follows the number of classes): dropped from a weights file.
        self.head_key_prefixes = (f"{len(layers) - 1}.",)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


@register_model("mlp")
def mlp(
    in_channels: int,
    image_size: tuple[int, int],
    num_outputs: int,
    hidden_sizes: Sequence[int] = (512, 256),
    batch_norm: bool = True,
    dropout: float = 0.2,
) -> MLP:
    return MLP(
        in_channels * image_size[0] * image_size[1], num_outputs, tuple(hidden_sizes), batch_norm, dropout
    )
