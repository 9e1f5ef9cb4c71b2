"""Image folders and zips of image folders: find the files, validate them once, decode them to uint8.

A tree is either a directory or a ``.zip`` archive read in place (never extracted). Files inside a
zip are named by references ``zip://ARCHIVE::MEMBER`` (ARCHIVE an absolute path); files on disk by
their absolute path. The layouts understood (after descending into a single wrapping folder such
as ``hymenoptera_data/``) are ``CLASS/...`` (bare class folders) and ``SPLIT/CLASS/...`` where
SPLIT is ``train`` and optionally ``val`` (or ``valid``/``validation``) and ``test``.

Decoding is the same everywhere (validation scan, DataLoader workers, :func:`decode_image`):
the first frame is decoded fully, then converted to grey (``L``) or RGB:

* 16- and 32-bit integer grey (``I;16``, ``I``): values 0..65535 scale to 0..255 with rounding
  (``round(v * 255 / 65535)``; 65535 → 255), values outside are clipped. Not data-dependent.
* Alpha (``RGBA``, ``LA``, ``PA``, palette or grey with a transparent colour): composited on
  black, i.e. each colour value is multiplied by alpha/255 and rounded. Fully transparent pixels
  become black whatever colour they hide, so the result does not depend on an editor's choice.
* Palette, CMYK, YCbCr, bilevel: Pillow's conversion to RGB or L.
* RGB → grey: ITU-R 601 luma (Pillow's ``L``); grey → RGB: the value repeated.
* 32-bit float (``F``) images are refused (no safe assumption about their range).

EXIF orientation is not applied (the pixels are used as stored, as in torchvision's ImageFolder).
Resizing uses Pillow's antialiased bilinear filter, on 8-bit data.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a tensor is made: decoding processes never load it
    import torch

import numpy as np
from PIL import Image, UnidentifiedImageError

from ignite_cv.utils.errors import UserError

#: File name extensions (lower case) taken as images.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

#: Folder names (lower case) that name a split, and the split each one is.
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

ZIP_PREFIX = "zip://"
_ZIP_SEP = "::"

#: A single image file larger than this is refused (protects against zip bombs and stray videos).
MAX_FILE_BYTES = 512 * 2**20

#: Below this many files the validation scan runs in the calling thread.
_POOL_MIN_FILES = 32


class UnreadableImage(Exception):
    """An image file that cannot be read or decoded; the message is the reason, without the path."""


# ----------------------------------------------------------------------------------------------
# references and reading bytes


def zip_ref(archive: str | Path, member: str) -> str:
    """The reference of ``member`` inside ``archive`` (made absolute)."""
    return f"{ZIP_PREFIX}{Path(archive).resolve()}{_ZIP_SEP}{member}"


def parse_zip_ref(ref: str) -> tuple[str, str] | None:
    """``(archive, member)`` for a ``zip://`` reference, None for a plain path."""
    if not ref.startswith(ZIP_PREFIX):
        return None
    archive, sep, member = ref[len(ZIP_PREFIX) :].partition(_ZIP_SEP)
    if not sep:
        raise ValueError(f"malformed zip reference {ref!r}")
    return archive, member


def display_ref(ref: str) -> str:
    """A reference as shown to users: ``ARCHIVE::MEMBER`` for zip members, else the path."""
    return ref[len(ZIP_PREFIX) :] if ref.startswith(ZIP_PREFIX) else ref


def _needs_quotes(text: str) -> bool:
    return text.startswith('"') or any(not ch.isprintable() and ch != " " for ch in text)


def display_name(ref: str) -> str:
    """:func:`display_ref` made safe for one line of a log or list: a name holding a newline or another
    control character (or starting with a double quote) is written as a JSON string, in double quotes
    with backslash escapes (``"a\\nb.png"``); every other name is written as it is."""
    shown = display_ref(ref)
    return json.dumps(shown, ensure_ascii=False) if _needs_quotes(shown) else shown


_local = threading.local()


def _zip_handle(archive: str) -> zipfile.ZipFile:
    """An open ZipFile for ``archive``, one per thread and per process.

    Opened lazily on first use; a forked DataLoader worker sees a different pid and opens its own
    handle rather than sharing the parent's file offset.
    """
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.zips = {}
    handle = _local.zips.get(archive)
    if handle is None:
        handle = _local.zips[archive] = zipfile.ZipFile(archive)
    return handle


def read_bytes(ref: str) -> bytes:
    """The raw bytes of an image file or zip member. Raises :class:`UnreadableImage`."""
    try:
        parsed = parse_zip_ref(ref)
        if parsed is None:
            size = os.path.getsize(ref)
            if size > MAX_FILE_BYTES:
                raise UnreadableImage(f"file too large ({size} bytes)")
            with open(ref, "rb") as f:
                return f.read()
        archive, member = parsed
        handle = _zip_handle(archive)
        info = handle.getinfo(member)
        if info.file_size > MAX_FILE_BYTES:
            raise UnreadableImage(f"file too large ({info.file_size} bytes)")
        return handle.read(info)
    except UnreadableImage:
        raise
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as err:
        raise UnreadableImage(f"cannot read the file ({_one_line(err)})") from None


# ----------------------------------------------------------------------------------------------
# decoding


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert a loaded Pillow image to mode ``L`` (``channels == 1``) or ``RGB`` (3), as documented
    in the module docstring. Raises :class:`UnreadableImage` for unsupported modes."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mode = img.mode
    if mode == "F":
        raise UnreadableImage("32-bit float pixels are not supported; save the image with 8 or 16 bits")
    if mode.startswith("I"):
        values = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        img = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))
    elif _has_alpha(img):
        grey = mode in ("LA", "La", "L", "1")
        rgba = np.asarray(img.convert("LA" if grey else "RGBA")).astype(np.uint32)
        colour, alpha = rgba[..., :-1], rgba[..., -1:]
        composited = ((colour * alpha + 127) // 255).astype(np.uint8)
        img = Image.fromarray(composited[..., 0] if grey else composited)
    elif mode in ("L", "1"):
        img = img.convert("L")
    elif mode != "RGB":
        img = img.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def resize(img: Image.Image, size: tuple[int, int], center_crop: bool) -> Image.Image:
    """Resize to ``size`` = (height, width) pixels.

    Without ``center_crop`` the whole image is stretched to the size (the aspect ratio may change).
    With it, the largest central region of the target's aspect ratio is resized to the size, which
    equals "resize the shorter side, then crop the centre" without resizing pixels that are cut.
    """
    height, width = size
    src_w, src_h = img.size
    if (src_w, src_h) == (width, height):
        return img
    if not center_crop:
        return img.resize((width, height), Image.Resampling.BILINEAR)
    if width * src_h >= height * src_w:  # the source is relatively taller: keep its full width
        crop_w, crop_h = float(src_w), min(float(src_h), src_w * height / width)
    else:
        crop_w, crop_h = min(float(src_w), src_h * width / height), float(src_h)
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return img.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )


def open_image(data: bytes) -> Image.Image:
    """Open and fully decode the first frame of an image. Raises :class:`UnreadableImage`."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except UnidentifiedImageError:
        raise UnreadableImage("not a readable image (unknown or damaged format)") from None
    except Image.DecompressionBombError as err:
        raise UnreadableImage(f"too many pixels ({_one_line(err)})") from None
    except OSError as err:
        raise UnreadableImage(f"damaged or truncated image data ({_one_line(err)})") from None
    except Exception as err:  # Pillow's plugins raise many types on malformed files
        raise UnreadableImage(f"damaged image ({type(err).__name__}: {_one_line(err)})") from None


def image_to_array(img: Image.Image) -> np.ndarray:
    """A mode ``L`` or ``RGB`` Pillow image as a C-contiguous uint8 ``(C, H, W)`` array."""
    array = np.array(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """A mode ``L`` or ``RGB`` Pillow image as a uint8 ``(C, H, W)`` tensor."""
    import torch

    return torch.from_numpy(image_to_array(img))


def decode_array(
    ref: str, channels: int, size: tuple[int, int] | None, center_crop: bool = False
) -> np.ndarray:
    """Decode one file (path or zip reference) to a uint8 ``(channels, H, W)`` array, resized to
    ``size`` (height, width) unless None. Raises :class:`UnreadableImage` with the reason."""
    img = to_channels(open_image(read_bytes(ref)), channels)
    if size is not None:
        img = resize(img, size, center_crop)
    return image_to_array(img)


def decode_image(
    ref: str, channels: int, size: tuple[int, int] | None, center_crop: bool = False
) -> torch.Tensor:
    """:func:`decode_array` as a tensor."""
    import torch

    return torch.from_numpy(decode_array(ref, channels, size, center_crop))


def decode_or_reason(
    ref: str, channels: int, size: tuple[int, int] | None, center_crop: bool = False
) -> np.ndarray | str:
    """:func:`decode_array`, or the reason the file cannot be read (the messages of :func:`check_image`)."""
    try:
        return decode_array(ref, channels, size, center_crop)
    except UnreadableImage as err:
        return str(err)
    except Exception as err:  # a conversion Pillow cannot do, for instance
        return f"cannot convert the image ({type(err).__name__}: {_one_line(err)})"


def check_image(ref: str, channels: int) -> str | None:
    """Validate one file the way training will read it: None if it decodes, else the reason."""
    try:
        with open_image(read_bytes(ref)) as img:
            to_channels(img, channels)
    except UnreadableImage as err:
        return str(err)
    except Exception as err:  # a conversion Pillow cannot do, for instance
        return f"cannot convert the image ({type(err).__name__}: {_one_line(err)})"
    return None


# ----------------------------------------------------------------------------------------------
# listing a tree


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _hidden(parts: Iterable[str]) -> bool:
    """Hidden files and folders and macOS resource forks, ignored without a report."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _unsafe_member(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    absolute = name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":")
    return absolute or ".." in parts


def _list_directory(root: Path) -> list[tuple[tuple[str, ...], str]]:
    """Files under ``root`` as (relative parts, absolute path). Symbolic links to folders are
    followed (class folders are often links), each real folder once, so a cycle cannot loop."""
    root = Path(os.path.abspath(root))
    entries = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        kept = []
        for d in dirnames:
            real = os.path.realpath(os.path.join(dirpath, d))
            if not _hidden([d]) and real not in seen:
                seen.add(real)
                kept.append(d)
        dirnames[:] = kept
        rel_dir = Path(dirpath).relative_to(root).parts
        for name in filenames:
            if not _hidden([name]):
                entries.append(((*rel_dir, name), str(Path(dirpath, name))))
    return entries


def _list_zip(archive: Path) -> list[tuple[tuple[str, ...], str]]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"cannot read zip file {archive} ({_one_line(err)})", "pass an intact .zip") from None
    unsafe = [info.filename for info in infos if _unsafe_member(info.filename)]
    if unsafe:
        raise UserError(
            f"zip file {archive} has {len(unsafe)} unsafe entries (absolute paths or '..', "
            f"e.g. {unsafe[0]!r}) and is refused",
            "re-create the zip with relative paths only",
        )
    entries = []
    for info in infos:
        if info.is_dir():
            continue
        parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p not in ("", "."))
        if parts and not _hidden(parts):
            entries.append((parts, zip_ref(archive, info.filename)))
    return entries


# ----------------------------------------------------------------------------------------------
# the layout of a tree


@dataclass
class FolderScan:
    """What :func:`scan_tree` found: per split, the readable files and their labels.

    ``splits`` has key ``"train"`` and, when the tree has them, ``"val"`` and ``"test"``; each
    value is ``(refs, labels)`` in (class, path) order. ``skipped`` is a sorted list of
    ``"PATH: reason"`` for every file left out (unreadable images and files that are not images).
    """

    class_names: list[str]
    splits: dict[str, tuple[list[str], list[int]]]
    skipped: list[str] = field(default_factory=list)


def _skip(skipped: list[str], ref: str, reason: str) -> None:
    skipped.append(f"{display_name(ref)}: {reason}")


def _assign(
    entries: list[tuple[tuple[str, ...], str]],
    where: str,
    skipped: list[str],
    parents: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, dict[str, list[tuple[tuple[str, ...], str]]]]:
    """Group files into ``{split: {class: [(parts, ref)]}}``; report files outside class folders.

    ``parents``, when given, receives each split's folder of class folders (relative parts)."""
    parents = {} if parents is None else parents
    entries = sorted(entries)
    depth = 0
    while True:  # descend into single wrapping folders (not a split or class folder)
        subdirs = sorted({p[depth] for p, _ in entries if len(p) > depth + 1})
        loose = [(p, r) for p, r in entries if len(p) == depth + 1]
        if (
            len(subdirs) == 1
            and subdirs[0].lower() not in SPLIT_FOLDERS
            and not any(is_image_name(p[-1]) for p, _ in loose)
            and any(len(p) > depth + 2 for p, _ in entries)
        ):
            for _, ref in loose:
                _skip(skipped, ref, "outside the class folders")
            entries = [(p, r) for p, r in entries if len(p) > depth + 1]
            depth += 1
            continue
        break

    split_dirs: dict[str, str] = {}
    for name in subdirs:
        split = SPLIT_FOLDERS.get(name.lower())
        if split is not None:
            if split in split_dirs:
                raise UserError(
                    f"{where} has both {split_dirs[split]}/ and {name}/ as the {split} split",
                    "keep one of them",
                )
            split_dirs[split] = name
    if split_dirs and "train" not in split_dirs:
        found = ", ".join(f"{d}/" for d in split_dirs.values())
        raise UserError(
            f"{where} has {found} but no train/ folder", "add a train/ folder of class sub-folders"
        )

    grouped: dict[str, dict[str, list[tuple[tuple[str, ...], str]]]] = {}
    prefix = entries[0][0][:depth] if entries else ()
    if split_dirs:
        parents.update({split: (*prefix, name) for split, name in split_dirs.items()})
        by_dir = {name: split for split, name in split_dirs.items()}
        for parts, ref in entries:
            split = by_dir.get(parts[depth]) if len(parts) > depth + 1 else None
            if split is None:
                _skip(skipped, ref, "outside the train/val/test folders")
            elif len(parts) == depth + 2:
                _skip(skipped, ref, "not in a class folder")
            else:
                grouped.setdefault(split, {}).setdefault(parts[depth + 1], []).append((parts, ref))
    else:
        parents["train"] = prefix
        for parts, ref in entries:
            if len(parts) == depth + 1:
                _skip(skipped, ref, "not in a class folder")
            else:
                grouped.setdefault("train", {}).setdefault(parts[depth], []).append((parts, ref))
    return grouped


def _run_checks(refs: list[str], channels: int, workers: int) -> Iterable[str | None]:
    """Reasons (None = readable) for ``refs``, in order, decoded by ``workers`` threads.

    Threads suffice: Pillow releases the GIL while it decodes, and threads share the zip handles'
    lazily opened files (one per thread) without pickling anything.
    """
    check: Callable[[str], str | None] = lambda ref: check_image(ref, channels)  # noqa: E731
    if workers <= 1 or len(refs) < _POOL_MIN_FILES:
        yield from map(check, refs)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-scan") as pool:
        try:
            yield from pool.map(check, refs, chunksize=16)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _empty_class_folders(
    root: Path, parents: dict[str, tuple[str, ...]], grouped: dict[str, dict[str, list]]
) -> list[Path]:
    """Folders beside the class folders that hold no (non-hidden) file: a class the user meant to have."""
    empty = []
    for split, parent in parents.items():
        folder = Path(os.path.abspath(root)).joinpath(*parent)
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            named_split = not parent and child.name.lower() in SPLIT_FOLDERS  # an empty val/ is no class
            known = child.name in grouped.get(split, {})
            if child.is_dir() and not _hidden([child.name]) and not known and not named_split:
                empty.append(child)
    return empty


@dataclass
class FolderListing:
    """The files of a tree before any is opened (:func:`list_tree`).

    ``candidates`` are the image files as ``(split, label, ref)`` in the order every pass uses: splits
    train, val, test; classes by label; paths sorted. ``skipped`` holds ``"PATH: reason"`` for files
    left out by their place or name alone (not in a class folder, not an image extension).
    """

    root: Path
    class_names: list[str]
    candidates: list[tuple[str, int, str]]
    skipped: list[str]
    splits: tuple[str, ...]  # the splits the tree has, in train/val/test order


def list_tree(root: str | Path) -> FolderListing:
    """List and label the image files of a folder or zip tree without opening them.

    Raises:
        UserError: the path does not exist, a zip is unreadable or has unsafe entries, there are
            no class folders or fewer than two classes, or a val/test class is missing from train.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"--data-root {root} does not exist", "pass a folder (or .zip) of class sub-folders")
    if root.is_dir():
        entries = _list_directory(root)
    elif zipfile.is_zipfile(root):
        entries = _list_zip(root)
    else:
        raise UserError(f"--data-root {root} is neither a folder nor a zip file", "pass a folder or a .zip")

    skipped: list[str] = []
    parents: dict[str, tuple[str, ...]] = {}
    grouped = _assign(entries, str(root), skipped, parents)
    empty = _empty_class_folders(root, parents, grouped) if root.is_dir() else []
    if empty:
        raise UserError(
            f"class folder {display_name(str(empty[0]))} holds no files"
            + (f" (nor do {len(empty) - 1} more)" if len(empty) > 1 else ""),
            "add its images, or remove the folder",
        )
    train_classes = grouped.get("train", {})
    if not train_classes:
        raise UserError(
            f"{root} has no class sub-folders with files",
            "arrange the images as CLASS/image.jpg or train/CLASS/image.jpg",
        )
    class_names = sorted(train_classes)
    if len(class_names) < 2:
        raise UserError(
            f"{root} has a single class ({class_names[0]!r})", "add a sub-folder per class (two or more)"
        )
    for split, classes in grouped.items():
        extra = sorted(set(classes) - set(class_names))
        if extra:
            raise UserError(
                f"the {split} split of {root} has classes that train lacks: {', '.join(extra)}",
                "use the same class folder names in every split",
            )

    candidates: list[tuple[str, int, str]] = []  # (split, label, ref)
    for split in ("train", "val", "test"):
        for label, name in enumerate(class_names):
            for parts, ref in grouped.get(split, {}).get(name, []):
                if is_image_name(parts[-1]):
                    candidates.append((split, label, ref))
                else:
                    suffix = PurePosixPath(parts[-1]).suffix or "no extension"
                    _skip(skipped, ref, f"not an image file ({suffix})")
    splits = tuple(s for s in ("train", "val", "test") if s in grouped)
    return FolderListing(root, class_names, candidates, skipped, splits)


def unreadable_error(ref: str, reason: str) -> UserError:
    """The ``--strict-data`` error for the first unreadable image."""
    return UserError(
        f"cannot read image {display_name(ref)}: {reason}",
        "repair or remove the file, or leave out --strict-data to skip unreadable images",
    )


def finish_scan(listing: FolderListing, reasons: Iterable[str | None], strict: bool = False) -> FolderScan:
    """The :class:`FolderScan` of ``listing`` given the reason (None = readable) of each candidate, in
    order: unreadable files are skipped (or, with ``strict``, the first raises :class:`UserError`).

    Raises:
        UserError: with ``strict``, for the first unreadable file; a train class has no readable image.
    """
    skipped = list(listing.skipped)
    splits: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in listing.splits}
    for (split, label, ref), reason in zip(listing.candidates, reasons, strict=True):
        if reason is None:
            splits[split][0].append(ref)
            splits[split][1].append(label)
        elif strict:
            raise unreadable_error(ref, reason)
        else:
            _skip(skipped, ref, reason)

    class_names = listing.class_names
    train_counts = np.bincount(np.asarray(splits["train"][1], dtype=np.int64), minlength=len(class_names))
    empty = [class_names[i] for i in np.flatnonzero(train_counts == 0)]
    if empty:
        raise UserError(
            f"class {empty[0]!r} of {listing.root} has no readable training image",
            "add images or remove the folder",
        )
    return FolderScan(class_names=class_names, splits=splits, skipped=sorted(skipped))


def scan_tree(root: str | Path, channels: int, workers: int = 1, strict: bool = False) -> FolderScan:
    """List, validate and label the images of a folder or zip tree (see the module docstring).

    Every image file is opened, fully decoded and converted to ``channels`` once. Unreadable ones
    are left out and reported in :attr:`FolderScan.skipped`, or with ``strict`` the first one (in
    path order) raises :class:`UserError`. Files without an image extension are always reported
    and left out; hidden files and ``__MACOSX`` folders are ignored silently. (Training decodes
    and validates in one pass instead: :mod:`ignite_cv.data.folder_cache`.)

    Raises:
        UserError: as :func:`list_tree` and :func:`finish_scan`.
    """
    listing = list_tree(root)
    reasons = _run_checks([ref for _, _, ref in listing.candidates], channels, workers)
    return finish_scan(listing, reasons, strict)
