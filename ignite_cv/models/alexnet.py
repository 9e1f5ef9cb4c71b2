"""AlexNet (torchvision's) and ``alexnet_small``, the same 5-conv/3-FC network scaled to 28–32 px images.

Both are an :class:`AlexNetClassifier`: ``features`` (five convs with ReLUs and three max-pools),
``avgpool``, ``classifier`` (the two hidden fully connected layers, fc6 and fc7, each Dropout → Linear →
ReLU) and a new ``head`` (:func:`~ignite_cv.models.heads.make_head`) in place of the 1000-way Linear.

``alexnet`` is torchvision's model built with ``weights=None``; its module names are kept (``features.0``
… ``features.10``, ``classifier.1``, ``classifier.4``) so an ImageNet state dict loads key for key, minus
its last layer ``classifier.6`` (dropped with ``head.*``: :attr:`AlexNetClassifier.head_key_prefixes`).
Its stride-4 11×11 stem and three stride-2 pools need images of at least 63×63 pixels.

``alexnet_small`` keeps the layer indices and conv widths (64, 192, 384, 256, 256) but uses 3×3 stride-1
convs and padded 3×3 stride-2 pools (32 → 16 → 8 → 4, 28 → 14 → 7 → 4), a 4×4 average pool and
1024-wide fc6/fc7: about 7.5 M parameters instead of 61 M. It has no pretrained weights (only files from
earlier ignite_cv runs).

Blocks, from input to output (see :mod:`ignite_cv.models.freezing`): ``conv1`` … ``conv5`` (each conv
with its ReLU and pool), then ``fc6`` and ``fc7``: seven in all. The hidden FC layers count as blocks
because they are pretrained too: ``--unfreeze 1`` trains fc7, ``--unfreeze 3`` fc7, fc6 and conv5.
"""

from __future__ import annotations

import torch
from torch import nn

from ignite_cv.models.heads import make_head
from ignite_cv.models.registry import register_model
from ignite_cv.utils.errors import UserError

#: The smallest side torchvision's AlexNet accepts: the last max-pool needs a 3×3 map.
ALEXNET_MIN_SIZE = 63


class AlexNetClassifier(nn.Module):
    """features → avgpool → flatten → classifier (fc6, fc7) → head."""

    head_key_prefixes = ("head.", "classifier.6.")
    stem_conv_key = "features.0.weight"

    def __init__(
        self,
        arch: str,
        features: nn.Sequential,
        avgpool: nn.Module,
        classifier: nn.Sequential,
        num_outputs: int,
        dropout: float,
        head_hidden: bool,
    ) -> None:
        super().__init__()
        self.arch_name = arch
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier
        self.num_features = [m for m in classifier if isinstance(m, nn.Linear)][-1].out_features
        self.head = make_head(self.num_features, num_outputs, dropout, head_hidden)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7's activations, shape (N, 4096) for alexnet and (N, 1024) for alexnet_small."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def backbone_blocks(self) -> list[tuple[str, nn.Module]]:
        """conv1 … conv5, fc6, fc7: each parametrised layer with the ReLU/pool/dropout around it."""
        blocks = [(f"conv{i + 1}", group) for i, group in enumerate(_groups(self.features))]
        blocks += [(f"fc{i + 6}", group) for i, group in enumerate(_groups(self.classifier))]
        return blocks


def _groups(sequence: nn.Sequential) -> list[nn.Sequential]:
    """Split ``sequence`` so that each part holds one layer with parameters and what follows it.

    Parameter-free modules before the first such layer (a Dropout) join its group.
    """
    groups: list[list[nn.Module]] = []
    for module in sequence:
        starts_group = _has_params(module) and any(_has_params(m) for g in groups[-1:] for m in g)
        if starts_group or not groups:
            groups.append([module])
        else:
            groups[-1].append(module)
    return [nn.Sequential(*group) for group in groups]


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _adapt_first_conv(features: nn.Sequential, in_channels: int) -> None:
    conv = features[0]
    if in_channels != conv.in_channels:
        features[0] = nn.Conv2d(
            in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding
        )


@register_model("alexnet")
def alexnet(
    in_channels: int,
    image_size: tuple[int, int],
    num_outputs: int,
    dropout: float = 0.2,
    head_hidden: bool = False,
) -> AlexNetClassifier:
    height, width = image_size
    if min(height, width) < ALEXNET_MIN_SIZE:
        raise UserError(
            f"alexnet needs images of at least {ALEXNET_MIN_SIZE}×{ALEXNET_MIN_SIZE} pixels, "
            f"got {height}×{width}",
            "use alexnet_small or --image-size 224",
        )
    import torchvision  # on first use: 0.5-0.8 s (it loads torch._dynamo) that other models skip

    base = torchvision.models.alexnet(weights=None)
    _adapt_first_conv(base.features, in_channels)
    classifier = base.classifier[:6]  # fc6 and fc7 with their Dropout/ReLU; the 1000-way layer goes
    return AlexNetClassifier(
        "alexnet", base.features, base.avgpool, classifier, num_outputs, dropout, head_hidden
    )


@register_model("alexnet_small")
def alexnet_small(
    in_channels: int,
    image_size: tuple[int, int],
    num_outputs: int,
    dropout: float = 0.2,
    head_hidden: bool = False,
) -> AlexNetClassifier:
    # Any size works (padded pools, adaptive average pool); it is sized for 28–32 px, where the last
    # feature map is 4×4.
    def pool() -> nn.MaxPool2d:
        return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        pool(),
        nn.Conv2d(64, 192, 3, padding=1),
        nn.ReLU(inplace=True),
        pool(),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        pool(),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5),
        nn.Linear(256 * 4 * 4, 1024),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(1024, 1024),
        nn.ReLU(inplace=True),
    )
    # He initialisation: without BatchNorm, PyTorch's default init shrinks the signal layer by layer.
    for module in (*features, *classifier):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    avgpool = nn.AdaptiveAvgPool2d((4, 4))
    return AlexNetClassifier(
        "alexnet_small", features, avgpool, classifier, num_outputs, dropout, head_hidden
    )
