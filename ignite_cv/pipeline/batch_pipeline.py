"""BatchPipeline: the one place where uint8 pixels become the model's float input, on the model's device."""

from __future__ import annotations

import torch
from torch import nn


class BatchPipeline(nn.Module):
    """uint8 ``(N, C, H, W)`` → float in [0, 1] → augmentation (only when asked) → normalization.

    The trainer's step calls it with ``augment=True``; evaluation calls it with ``augment=False``
    and is deterministic. Kornia augmentations ignore ``.training``, so the flag is explicit.
    """

    def __init__(self, normalizer: nn.Module, augmentation: nn.Module | None = None) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.augmentation = augmentation

    def forward(self, images: torch.Tensor, augment: bool = False) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"BatchPipeline takes uint8 images, got {images.dtype}")
        x = images.float().div_(255.0)
        if augment and self.augmentation is not None:
            x = self.augmentation(x)
        return self.normalizer(x)
