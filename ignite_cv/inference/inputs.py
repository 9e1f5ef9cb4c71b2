"""What to predict on: image files, folders (recursive), zips of images, and in-memory images.

:func:`collect_inputs` turns what a user passes into a flat list of :class:`InputImage` (a file or
zip member to decode later, or an image already in memory) plus the files it left out (anything
without an image extension inside a folder or zip). Files are only listed here, never opened:
decoding happens in the loader's workers (:mod:`ignite_cv.inference.dataset`).

Names shown to users (:attr:`InputImage.source`, the CSV's ``path`` column) are the paths as given:
a file as typed, a folder's files as ``FOLDER/relative/path``, a zip's members as
``ARCHIVE::member``. A folder's or zip's files come in sorted order of their relative path (code
point order); hidden files and folders and ``__MACOSX`` are ignored silently, as in training.

In-memory images are PIL images, or uint8 numpy arrays / torch tensors: ``(H, W)`` grey, ``(H, W,
C)`` or ``(C, H, W)`` with C in 1, 3, 4 (4 = RGBA, composited on black like files with alpha), or a
4-D batch of those. A numpy array is read as HWC and a tensor as CHW (each library's convention)
unless only the other layout has a channel axis of 1, 3 or 4.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image

from ignite_cv.data.folder import IMAGE_EXTENSIONS, is_image_name, zip_ref
from ignite_cv.utils.errors import UserError

_CHANNELS = (1, 3, 4)
_FIX = "pass image files, folders of images or .zip files of images"


@dataclass(frozen=True)
class InputImage:
    """One image to predict on: ``ref`` (a path or ``zip://`` reference) or ``image`` (in memory)."""

    source: str
    ref: str | None = None
    image: Image.Image | None = None


@dataclass(frozen=True)
class LeftOut:
    """A file (or in-memory image) that gets no prediction, and why (one line)."""

    source: str
    reason: str


@dataclass
class CollectedInputs:
    images: list[InputImage]
    left_out: list[LeftOut]


def collect_inputs(inputs: Any) -> CollectedInputs:
    """Expand ``inputs`` (one input or a sequence of them) into images, in the order given.

    Raises:
        UserError: a path that does not exist, a folder or zip without image files, an unreadable
            or unsafe zip, an array that is not a uint8 image, or nothing to predict on at all.
    """
    items = [inputs] if _is_single(inputs) else list(inputs)
    if not items:
        raise UserError("no input images were given", _FIX)
    images: list[InputImage] = []
    left_out: list[LeftOut] = []
    for position, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            _collect_path(Path(item), str(item), images, left_out)
        else:
            batch = _in_memory(item, position)
            for offset, image in enumerate(batch):
                name = f"<image {position}.{offset}>" if _is_batch(item) else f"<image {position}>"
                images.append(InputImage(source=name, image=image))
    return CollectedInputs(images, left_out)


def _is_single(inputs: Any) -> bool:
    return isinstance(inputs, (str, os.PathLike, Image.Image, np.ndarray, torch.Tensor))


def _is_batch(item: Any) -> bool:
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 4


# -- paths ------------------------------------------------------------------------------------------


def _collect_path(path: Path, shown: str, images: list[InputImage], left_out: list[LeftOut]) -> None:
    if not path.exists():
        raise UserError(f"input {shown} does not exist", f"check the path; {_FIX}")
    if path.is_dir():
        entries = _list_folder(path)
        prefix = shown.rstrip("/\\") + "/"
        found = [(prefix + "/".join(parts), str(path.joinpath(*parts))) for parts in entries]
    elif path.suffix.lower() == ".zip" or (path.suffix.lower() not in IMAGE_EXTENSIONS and _is_zip(path)):
        found = [(f"{shown}::{member}", zip_ref(path, member)) for member in _list_zip(path, shown)]
    else:  # a file named on the command line is tried whatever its name: the decoder decides
        images.append(InputImage(source=shown, ref=str(path)))
        return
    kept = 0
    for source, ref in found:
        name = source.rsplit("::", 1)[-1]
        if is_image_name(name):
            images.append(InputImage(source=source, ref=ref))
            kept += 1
        else:
            suffix = PurePosixPath(name).suffix or "no extension"
            left_out.append(LeftOut(source, f"not an image file ({suffix})"))
    if not kept:
        kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"{shown} has no image files ({kinds})", _FIX)


def _hidden(parts: Iterable[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _list_folder(root: Path) -> list[tuple[str, ...]]:
    """Relative parts of the files under ``root``, sorted. Links to folders are followed, each real
    folder once, so a cycle cannot loop."""
    root = Path(os.path.abspath(root))
    seen = {os.path.realpath(root)}
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        kept = []
        for name in dirnames:
            real = os.path.realpath(os.path.join(dirpath, name))
            if not _hidden([name]) and real not in seen:
                seen.add(real)
                kept.append(name)
        dirnames[:] = kept
        rel = Path(dirpath).relative_to(root).parts
        found += [(*rel, name) for name in filenames if not _hidden([name])]
    return sorted(found)


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _list_zip(archive: Path, shown: str) -> list[str]:
    """Member names of the files in ``archive``, sorted; an unsafe name refuses the zip (as in training)."""
    try:
        with zipfile.ZipFile(archive) as handle:
            infos = handle.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(
            f"cannot read zip file {shown} ({' '.join(str(err).split())})", "pass an intact .zip"
        ) from None
    members = []
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":") or ".." in parts:
            raise UserError(
                f"zip file {shown} has an unsafe entry {name!r} (absolute path or '..') and is refused",
                "re-create the zip with relative paths only",
            )
        if not info.is_dir() and not _hidden(p for p in parts if p):
            members.append(name)
    return sorted(members)


# -- in-memory images -------------------------------------------------------------------------------


def _in_memory(item: Any, position: int) -> list[Image.Image]:
    if isinstance(item, Image.Image):
        return [item]
    if isinstance(item, torch.Tensor):
        array, channels_first = item.detach().cpu().numpy(), True
    elif isinstance(item, np.ndarray):
        array, channels_first = item, False
    else:
        raise UserError(
            f"input {position} is a {type(item).__name__}",
            "pass paths, PIL images, or uint8 numpy arrays / torch tensors",
        )
    if array.dtype != np.uint8:
        raise UserError(
            f"input {position} has dtype {array.dtype}; images are read as uint8 pixels 0..255",
            "convert it, e.g. (x * 255).round().clip(0, 255).astype(np.uint8) for floats in [0, 1]",
        )
    if array.ndim == 4:
        return [_array_to_image(a, channels_first, f"{position}.{i}") for i, a in enumerate(array)]
    return [_array_to_image(array, channels_first, str(position))]


def _array_to_image(array: np.ndarray, channels_first: bool, name: str) -> Image.Image:
    if array.ndim == 3:
        first, last = array.shape[0] in _CHANNELS, array.shape[-1] in _CHANNELS
        if (channels_first and first) or (not last and first):
            array = np.moveaxis(array, 0, -1)
        elif not last:
            raise UserError(
                f"input {name} has shape {tuple(array.shape)}, with no channel axis of 1, 3 or 4",
                "pass (H, W), (H, W, C) or (C, H, W) pixels",
            )
        if array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim != 2 and array.ndim != 3:
        raise UserError(
            f"input {name} has shape {tuple(array.shape)}", "pass (H, W), (H, W, C) or (C, H, W) pixels"
        )
    if min(array.shape[:2]) < 1:
        raise UserError(f"input {name} has no pixels (shape {tuple(array.shape)})", "pass a non-empty image")
    return Image.fromarray(np.ascontiguousarray(array))  # 2-D → L, 3 channels → RGB, 4 → RGBA
