"""ResNet-18/34/50 (torchvision's) with a new head and any number of input channels.

The backbone is torchvision's own model, built with ``weights=None`` (a builder never downloads), and
keeps torchvision's module names (``conv1``, ``bn1``, ``layer1`` … ``layer4``) so an ImageNet state dict
loads key for key. Its ``fc`` layer is removed and a :func:`~ignite_cv.models.heads.make_head` head is
added under the name ``head``; loaders drop ``fc.*`` and ``head.*`` keys of a weights file
(:attr:`ResNetClassifier.head_key_prefixes`). For ``in_channels != 3`` ``conv1`` is a new 7×7 conv with
that many input channels (pretrained RGB weights are folded into it by
:mod:`ignite_cv.models.pretrained`).

Blocks, from input to output (see :mod:`ignite_cv.models.freezing`): ``stem`` (``conv1`` + ``bn1``),
``layer1``, ``layer2``, ``layer3``, ``layer4``: five in all.
"""

from __future__ import annotations

import torch
from torch import nn

from ignite_cv.models.heads import make_head
from ignite_cv.models.registry import register_model


class ResNetClassifier(nn.Module):
    """A torchvision ResNet's backbone (same parameter names) followed by ``head``."""

    #: State-dict key prefixes of a classifier layer that a weights file may hold and we replace.
    head_key_prefixes = ("head.", "fc.")
    #: The first conv's weight: folded from RGB to grey when a pretrained file has 3 channels.
    stem_conv_key = "conv1.weight"

    def __init__(
        self, arch: str, in_channels: int, num_outputs: int, dropout: float, head_hidden: bool
    ) -> None:
        super().__init__()
        self.arch_name = arch
        import torchvision  # on first use: 0.5-0.8 s (it loads torch._dynamo) that other models skip

        base = getattr(torchvision.models, arch)(weights=None)
        if in_channels != 3:
            conv = base.conv1
            base.conv1 = nn.Conv2d(
                in_channels,
                conv.out_channels,
                kernel_size=conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                bias=False,
            )
            # torchvision's own initialisation for its convs (He, fan-out, ReLU).
            nn.init.kaiming_normal_(base.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.conv1 = base.conv1
        self.bn1 = base.bn1
        self.relu = base.relu
        self.maxpool = base.maxpool
        self.layer1 = base.layer1
        self.layer2 = base.layer2
        self.layer3 = base.layer3
        self.layer4 = base.layer4
        self.avgpool = base.avgpool
        self.num_features = base.fc.in_features
        self.head = make_head(self.num_features, num_outputs, dropout, head_hidden)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features, shape (N, 512) for ResNet-18/34 and (N, 2048) for ResNet-50."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def backbone_blocks(self) -> list[tuple[str, nn.Module]]:
        """The blocks that fine-tuning unfreezes from the top, ordered from the input to the output."""
        return [
            ("stem", nn.ModuleList([self.conv1, self.bn1])),
            ("layer1", self.layer1),
            ("layer2", self.layer2),
            ("layer3", self.layer3),
            ("layer4", self.layer4),
        ]


def _register(arch: str) -> None:
    """Register ``arch`` (a torchvision ResNet name) with the registry's builder signature."""

    def builder(
        in_channels: int,
        image_size: tuple[int, int],
        num_outputs: int,
        dropout: float = 0.2,
        head_hidden: bool = False,
    ) -> ResNetClassifier:
        # Any input size works: the stride-32 backbone ends in an adaptive average pool (at 32 px the last
        # feature map is 1×1; small images lose much of their detail to the stride-4 stem).
        return ResNetClassifier(arch, in_channels, num_outputs, dropout, head_hidden)

    builder.__name__ = builder.__qualname__ = arch
    register_model(arch)(builder)


for _arch in ("resnet18", "resnet34", "resnet50"):
    _register(_arch)
