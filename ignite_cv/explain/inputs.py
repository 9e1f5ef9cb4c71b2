"""The images a user asks to explain: files, folders (recursive), zips, or a split of a data set.

Each image becomes an :class:`ImageItem`: a name to show (the path, ``ARCHIVE::MEMBER`` in a zip, or
``DATASET/SPLIT/#INDEX``), the true class where it is known, and where its pixels come from (a file
reference decoded later, or a row of an in-memory uint8 tensor). The true class of a file is the
checkpoint's class whose name is the file's folder (``…/PNEUMONIA/img.png``), as in a class-folder tree.

Folders and zips contribute the files with an image extension (others are listed as skipped, hidden files
and ``__MACOSX`` are ignored); a file named on the command line is tried whatever its extension. A path
that does not exist or a zip that cannot be read is listed as skipped too: one bad argument among many does
not stop the others. Unreadable images are found when they are decoded (:mod:`ignite_cv.explain.run`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ignite_cv.data.folder import display_ref, is_image_name, parse_zip_ref, zip_ref
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.text import first_line

SPLITS = ("test", "val", "train")


@dataclass
class ImageItem:
    """One image to explain. Exactly one of ``ref`` (a file) and ``row`` (of :attr:`ImageInputs.tensor`)."""

    name: str
    label: int | None = None
    ref: str | None = None
    row: int | None = None


@dataclass
class ImageInputs:
    """The images in order, the in-memory pixels of data-set items, and what was skipped (``"NAME: why"``)."""

    items: list[ImageItem]
    tensor: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _label(parent: str, class_names: list[str]) -> int | None:
    return class_names.index(parent) if parent in class_names else None


def _folder_files(root: Path) -> list[str]:
    """Files under ``root``, recursively, sorted; links to folders are followed once each."""
    found = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, name))
            if not name.startswith(".") and name != "__MACOSX" and real not in seen:
                seen.add(real)
                kept.append(name)
        dirnames[:] = kept
        found += [os.path.join(dirpath, n) for n in filenames if not n.startswith(".")]
    return sorted(found)


def _zip_members(archive: Path, skipped: list[str]) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as handle:
            names = [info.filename for info in handle.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        skipped.append(f"{archive}: cannot read the zip ({first_line(err)})")
        return []
    members = []
    for name in sorted(names):
        parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
        if not parts or _hidden(parts):
            continue
        if name.startswith(("/", "\\")) or ".." in parts:
            skipped.append(f"{archive}::{name}: unsafe path in the zip")
        else:
            members.append(name)
    return members


def collect_files(paths: list[str], class_names: list[str]) -> ImageInputs:
    """The images of ``paths`` (files, folders, zips), in argument order and sorted within each."""
    items: list[ImageItem] = []
    skipped: list[str] = []
    for text in paths:
        path = Path(text).expanduser()
        if path.is_dir():
            for file in _folder_files(path):
                if is_image_name(file):
                    items.append(ImageItem(file, _label(Path(file).parent.name, class_names), ref=file))
                else:
                    skipped.append(
                        f"{file}: not an image file ({PurePosixPath(file).suffix or 'no extension'})"
                    )
        elif path.is_file() and zipfile.is_zipfile(path):
            for member in _zip_members(path, skipped):
                ref = zip_ref(path, member)
                if is_image_name(member):
                    parent = PurePosixPath(member.replace("\\", "/")).parent.name
                    items.append(ImageItem(display_ref(ref), _label(parent, class_names), ref=ref))
                else:
                    skipped.append(f"{display_ref(ref)}: not an image file")
        elif path.is_file():
            items.append(ImageItem(str(path), _label(path.resolve().parent.name, class_names), ref=str(path)))
        else:
            skipped.append(f"{text}: no such file or folder")
    return ImageInputs(items, None, skipped)


def collect_dataset(data_options: Any, card: Any, split: str, limit: int, seed: int = 0) -> ImageInputs:
    """The first ``limit`` images (0: all) of ``split`` of the data set ``data_options`` names, shaped like
    the checkpoint's input (its size, channels and centre crop), with their labels.

    Raises:
        UserError: an unknown split, a data set whose number of classes is not the checkpoint's, or any
            problem :func:`ignite_cv.data.sources.load_data` reports.
    """
    from ignite_cv.data.sources import load_data

    if split not in SPLITS:
        raise UserError(f"unknown --split {split!r}", f"choose one of: {', '.join(SPLITS)}")
    if limit < 0:
        raise UserError(f"--limit must be >= 0, got {limit}", "pass 0 for the whole split")
    height, width = card.image_size
    if height != width:
        raise UserError(
            f"the checkpoint expects {height}×{width} images and data sets are resized to squares",
            "pass the images as files instead",
        )
    data_options.image_size = int(height)
    data_options.channels = int(card.in_channels)
    data_options.center_crop = bool(card.extra.get("center_crop", False))
    data = load_data(data_options, seed)
    if data.num_classes != card.num_classes:
        raise UserError(
            f"the checkpoint has {card.num_classes} classes but --dataset {data_options.dataset} has "
            f"{data.num_classes}",
            "explain images of the data set the model was trained on",
        )
    chosen = getattr(data, split)
    count = len(chosen) if limit == 0 else min(limit, len(chosen))
    labels = chosen.labels[:count].tolist()
    skipped = [f"{display_ref(s)}" for s in data.skipped]
    if chosen.files is not None:
        items = [
            ImageItem(display_ref(ref), label, ref=ref) for ref, label in zip(chosen.files[:count], labels)
        ]
        return ImageInputs(items, None, skipped)
    name = f"{data_options.dataset}/{split}"
    items = [ImageItem(f"{name}/#{i}", label, row=i) for i, label in enumerate(labels)]
    return ImageInputs(items, chosen.images[:count], skipped)


def short_name(item: ImageItem) -> str:
    """A file-name-safe stem for an item's output files (its file's stem, or ``#INDEX`` → ``INDEX``)."""
    if item.ref is not None:
        parsed = parse_zip_ref(item.ref)
        stem = PurePosixPath(parsed[1] if parsed else item.ref.replace("\\", "/")).stem
    else:
        stem = item.name.rsplit("#", 1)[-1]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return safe[:60] or "image"
