"""Decoding inputs in DataLoader workers: uint8 batches plus, per image, why it could not be read.

Unlike training's :class:`~ignite_cv.data.loaders.FileImageDataset` (whose files were all validated
before the run), an input here may be unreadable: the item then carries a zero image and the
reason, and the predictor leaves it out (or stops, with ``strict``). Each file is read and decoded
once, in a worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ignite_cv.data.folder import UnreadableImage
from ignite_cv.inference.inputs import InputImage
from ignite_cv.inference.preprocess import Preprocessing


class InputDataset(Dataset):
    """Item ``i``: ``(uint8 (C, H, W) image, i, reason)``; reason ``""`` when the image was read."""

    def __init__(self, images: Sequence[InputImage], preprocessing: Preprocessing) -> None:
        self.images = list(images)
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        item = self.images[index]
        prep = self.preprocessing
        try:
            tensor = prep.image(item.image) if item.image is not None else prep.decode_file(item.ref)
            return tensor, index, ""
        except UnreadableImage as err:
            return torch.zeros(prep.channels, *prep.size, dtype=torch.uint8), index, str(err)


def build_input_loader(
    images: Sequence[InputImage],
    preprocessing: Preprocessing,
    batch_size: int,
    workers: int,
    device: torch.device,
) -> DataLoader:
    """Batches in input order. ``workers`` decode files in parallel (0 for in-memory images, which
    would only be pickled over to them, and for a single batch, where starting workers costs more
    than it saves); batches are pinned for a CUDA device."""
    dataset = InputDataset(images, preprocessing)
    batches = math.ceil(len(dataset) / batch_size)
    if batches <= 1 or any(item.image is not None for item in dataset.images):
        workers = 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=min(workers, batches),
        pin_memory=device.type == "cuda" and torch.cuda.is_available(),
    )
