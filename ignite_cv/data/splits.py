"""The shapes data takes between a source and a loader.

A source (``ignite_cv.data.sources``) turns a data set name and root into a :class:`DataBundle`
of three :class:`Split` objects. A split holds its images either in memory, as one uint8
tensor ``(N, C, H, W)``, or as a list of image files decoded on demand (in DataLoader workers) to
uint8 ``(C, H, W)`` at the bundle's fixed size. Labels are always an int64 tensor ``(N,)``.
An image folder's splits carry both: the decoded tensor (possibly memory-mapped from the decode
cache, see ``ignite_cv.data.folder_cache``) and the files it was decoded from, row for row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split of a data set.

    At least one of ``images`` (uint8, ``(N, C, H, W)``) and ``files`` (paths of image files, or
    ``zip://ARCHIVE::MEMBER`` references read in place) is set. With both, ``images[i]`` is ``files[i]``
    decoded at the bundle's size; the split is then :attr:`in_memory` (``images`` is what loaders
    read; a memory-mapped tensor is read from disk page by page) and ``files`` says where each
    image came from.
    """

    labels: torch.Tensor
    images: torch.Tensor | None = None
    files: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images is None and self.files is None:
            raise ValueError("a Split holds `images`, `files` or both")
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise ValueError(
                f"labels must be int64 of shape (N,), got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if self.images is not None:
            if self.images.dtype != torch.uint8 or self.images.ndim != 4:
                got = f"{self.images.dtype} {tuple(self.images.shape)}"
                raise ValueError(f"images must be uint8 of shape (N, C, H, W), got {got}")
            if len(self.images) != len(self.labels):
                raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.files is not None and len(self.files) != len(self.labels):
            raise ValueError(f"{len(self.files)} files but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def subset(self, indices: torch.Tensor) -> Split:
        """The samples at ``indices`` (int64), in that order (images are copied)."""
        images = self.images[indices] if self.images is not None else None
        files = [self.files[i] for i in indices.tolist()] if self.files is not None else None
        return Split(labels=self.labels[indices], images=images, files=files)


@dataclass
class DataBundle:
    """A data set ready for training: three splits and what a model needs to know about them.

    ``channels`` and ``image_size`` (height, width) describe what every split yields after decoding;
    ``skipped`` lists files that could not be read (with the reason), so a run can report them.
    """

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    channels: int
    image_size: tuple[int, int]
    skipped: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def pool_validation(data: DataBundle) -> DataBundle:
    """``data`` with the validation samples added to the training split (``--train-on-val``); the
    validation split stays as it is, so the epoch loop still has one to evaluate."""
    train, val = data.train, data.val
    if train.in_memory != val.in_memory:
        raise ValueError("train and val must both be in memory or both be files")
    labels = torch.cat([train.labels, val.labels])
    if train.in_memory:
        pooled = Split(labels=labels, images=torch.cat([train.images, val.images]))
    else:
        pooled = Split(labels=labels, files=[*train.files, *val.files])
    return dataclasses.replace(data, train=pooled)
