"""The model's input made from a checkpoint's card alone: decode, channels, size (or centre crop), normalize.

A user explains a saved model by passing images and nothing else: :class:`CardInput` reads everything from
the :class:`~ignite_cv.weights.ModelCard` — ``in_channels`` (grey or RGB, converted as in training),
``image_size`` (height, width), ``extra["center_crop"]`` (when the card records it; a plain resize
otherwise, the training default) and ``normalization`` (rebuilt by
:func:`~ignite_cv.pipeline.normalize.build_normalizer`). Files decode exactly as the training loaders
decode them (:func:`ignite_cv.data.folder.decode_image`) and uint8 batches become floats in the same
:class:`~ignite_cv.pipeline.batch_pipeline.BatchPipeline` (no augmentation), so the model sees what it
saw in validation.
"""

from __future__ import annotations

import torch

from ignite_cv.data.folder import decode_image
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.weights import ModelCard


class CardInput:
    """Decode files to the card's uint8 ``(C, H, W)`` and turn uint8 batches into the model's float input."""

    def __init__(self, card: ModelCard, device: torch.device | str = "cpu") -> None:
        self.channels = int(card.in_channels)
        self.size = (int(card.image_size[0]), int(card.image_size[1]))
        self.center_crop = bool(card.extra.get("center_crop", False))
        self.device = torch.device(device)
        self.pipeline = BatchPipeline(build_normalizer(card.normalization)).to(self.device)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one model input."""
        return (self.channels, *self.size)

    def decode(self, ref: str) -> torch.Tensor:
        """One image file (a path or ``zip://`` reference) as uint8 ``(C, H, W)`` at the card's size.

        Raises:
            ignite_cv.data.folder.UnreadableImage: the file cannot be read or decoded (the reason).
        """
        return decode_image(ref, self.channels, self.size, self.center_crop)

    def check_batch(self, images: torch.Tensor) -> None:
        expected = (self.channels, *self.size)
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images must be uint8 (N, {expected[0]}, {expected[1]}, {expected[2]}) as the model's card "
                f"says, got {images.dtype} {tuple(images.shape)}"
            )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` at the card's shape → the normalized float input, on :attr:`device`."""
        self.check_batch(images)
        with torch.no_grad():
            return self.pipeline(images.to(self.device, non_blocking=True), augment=False)
