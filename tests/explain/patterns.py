"""Test helpers: a data set whose class is decided by a small pattern at a known place, a small ResNet,
a plain training loop, and hand-made checkpoints.

Images are ``SIZE``×``SIZE`` noise in [0, 0.5] with a bright 5×5 pattern (9 pixels at 1.0) in one quadrant
(its place is known) and, in every image, a bright filled 4×4 square (16 pixels at 1.0) in another quadrant:
a decoy brighter than the pattern that says nothing about the class, so a map that merely follows brightness
points at the decoy rather than at the pattern. Class 0 has no pattern (the square only), class 1 a "+" and
class 2 (in three-class sets) an "×": a class with a pattern is recognised by its presence, as a lesion is,
so its evidence is the pattern. (Two classes with a pattern each at its own place let a two-class model
learn one pattern and read the other class off its absence, whose map can point nowhere.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from ignite_cv.weights import ModelCard, save_model

SIZE = 32
HALF = SIZE // 2
K = 5
PLUS = torch.zeros(K, K)
PLUS[K // 2, :] = 1
PLUS[:, K // 2] = 1
CROSS = ((torch.eye(K) + torch.eye(K).flip(1)) > 0).float()
SQUARE = torch.zeros(K, K)
SQUARE[:4, :4] = 1
#: Normalization of the generated images (mean and std of the noise-and-pattern pixels, roughly).
MEAN, STD = 0.3, 0.3


def pattern_images(
    n: int, classes: int, channels: int, seed: int, with_pattern_only: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(normalized float images ``(n, channels, SIZE, SIZE)``, labels, the pattern's quadrant or -1).

    Quadrants are numbered 0 1 / 2 3. ``with_pattern_only``: no class-0 images.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, SIZE, SIZE, generator=g) * 0.5
    low = 1 if with_pattern_only else 0
    y = torch.randint(low, classes, (n,), generator=g)
    quadrants = torch.full((n,), -1, dtype=torch.int64)
    for i in range(n):
        quadrant, decoy = torch.randperm(4, generator=g)[:2].tolist()
        marks = [(decoy, SQUARE)]
        if y[i] > 0:
            marks.append((quadrant, PLUS if y[i] == 1 else CROSS))
            quadrants[i] = quadrant
        for where, mark in marks:
            top = (where // 2) * HALF + int(torch.randint(1, HALF - K, (1,), generator=g))
            left = (where % 2) * HALF + int(torch.randint(1, HALF - K, (1,), generator=g))
            patch = x[i, :, top : top + K, left : left + K]
            patch.copy_(torch.maximum(patch, mark))
    return (x - MEAN) / STD, y, quadrants


def peak_in_quadrant(maps: torch.Tensor, quadrants: torch.Tensor) -> float:
    """Share of maps whose maximum lies in the pattern's quadrant; a flat map (no peak) counts as a miss."""
    hits = 0
    for cam, quadrant in zip(maps, quadrants.tolist()):
        if cam.max() <= cam.min():
            continue
        row, col = divmod(int(cam.argmax()), cam.shape[-1])
        hits += int((row // HALF) * 2 + col // HALF == quadrant)
    return hits / len(maps)


class SmallResNet(nn.Module):
    """A ResNet (torchvision's BasicBlock, stem, layer1..layer4, global average pool, linear head) of
    width ``width``: at 32 px its ``layer4`` map is 4×4, and it trains in seconds on a CPU."""

    def __init__(self, in_channels: int, num_outputs: int, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)

        def layer(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            down = None
            if stride != 1 or c_in != c_out:
                down = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
            return nn.Sequential(BasicBlock(c_in, c_out, stride, down))

        self.layer1 = layer(width, width, 1)
        self.layer2 = layer(width, 2 * width, 2)
        self.layer3 = layer(2 * width, 4 * width, 2)
        self.layer4 = layer(4 * width, 8 * width, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8 * width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(torch.flatten(self.avgpool(x), 1))


def train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int = 0
) -> nn.Module:
    """Adam on cross-entropy (BCE for one logit), batches of 32; then BatchNorm statistics re-estimated on
    the training images (a few fast epochs leave the running averages behind the weights); eval mode."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x)).split(32):
            out = model(x[batch])
            if out.shape[1] == 1:
                loss = F.binary_cross_entropy_with_logits(out.squeeze(1), y[batch].float())
            else:
                loss = F.cross_entropy(out, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the passes below
    with torch.no_grad():
        for batch in torch.arange(len(x)).split(128):
            model(x[batch])
    return model.eval()


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(1)


def meanstd_card(arch: str, channels: int, size: int, class_names: list[str], **arch_args) -> ModelCard:
    """A card like a run's, with ``meanstd`` normalization of 0.5 ± 0.25 per channel."""
    return ModelCard(
        arch=arch,
        arch_args=arch_args,
        class_names=class_names,
        in_channels=channels,
        image_size=[size, size],
        num_outputs=1 if len(class_names) == 2 else len(class_names),
        normalization={"kind": "meanstd", "mean": [0.5] * channels, "std": [0.25] * channels},
    )


def save_checkpoint(path, model: nn.Module, card: ModelCard):
    save_model(path, model, card)
    return path
