"""Data sources: a data set name and root become a :class:`DataBundle` of train/val/test splits.

Array sources (digits, MNIST, Fashion-MNIST, CIFAR, npz) load every image into one uint8 tensor
``(N, C, H, W)``; ``--image-size`` and ``--channels`` are applied once, here. Image folders are
decoded here, once, in one parallel pass that also finds the unreadable files, and cached on disk
(:mod:`ignite_cv.data.folder_cache`); their splits hold the decoded tensor and the files. Only a folder
too large for memory with no cache keeps file splits, decoded in DataLoader workers every epoch.

Splits a source lacks are derived the same way everywhere (:func:`complete_splits`): with no test
split, a stratified :data:`TEST_FRACTION` of train is held out with the fixed :data:`TEST_SEED`,
so every run tests on the same images whatever ``--seed`` is; with no validation split, a
stratified ``--val-fraction`` of the remaining train is held out with the run's seed. A source with
train and val but no test (ants/bees) uses its val folder as the test split and validates on a
split of train.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ignite_cv.data.decode_cache import DecodeSettings
from ignite_cv.data.folder import finish_scan, list_tree
from ignite_cv.data.folder_cache import decode_folder, decode_processes, resolve_cache_dir, split_pixels
from ignite_cv.data.idx import read_idx
from ignite_cv.data.options import DATASETS
from ignite_cv.data.split import stratified_split
from ignite_cv.data.splits import DataBundle, Split, pool_validation
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.limits import MAX_CLASSES, MAX_IMAGE_SIDE

#: Share of train held out as the test split when a source has none.
TEST_FRACTION = 0.2
#: Seed of that hold-out: fixed, so the test images do not change with ``--seed``.
TEST_SEED = 20240229

#: Default size and channels of image folders when ``--image-size``/``--channels`` are 0.
FOLDER_IMAGE_SIZE = 224
FOLDER_CHANNELS = 3

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

#: The four IDX files of (Fashion-)MNIST, by role.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def load_data(options: Any, seed: int) -> DataBundle:
    """Load the data set that ``options`` names (any object with :class:`DataOptions`' attributes).

    ``seed`` chooses the validation split where one is carved out of train (the test split never
    depends on it). Raises :class:`UserError` for every problem the user can fix.
    """
    _check_options(options)
    loader = _SOURCES.get(options.dataset)
    if loader is None:
        raise UserError(f"unknown --dataset {options.dataset!r}", f"choose one of: {', '.join(DATASETS)}")
    bundle = loader(options, seed)
    return pool_validation(bundle) if getattr(options, "train_on_val", False) else bundle


def _check_options(options: Any) -> None:
    if options.image_size < 0:
        raise UserError(f"--image-size must be >= 0, got {options.image_size}", "pass a size in pixels, or 0")
    if options.channels not in (0, 1, 3):
        raise UserError(
            f"--channels must be 0, 1 or 3, got {options.channels}", "pass 1 (grey), 3 (RGB) or 0"
        )
    if options.workers < 0:
        raise UserError(
            f"--workers must be >= 0, got {options.workers}", "pass 0 to decode in the main process"
        )


# ----------------------------------------------------------------------------------------------
# splits


def complete_splits(
    train: Split, val: Split | None, test: Split | None, val_fraction: float, seed: int, source: str
) -> tuple[Split, Split, Split]:
    """Derive missing splits from train (see the module docstring) and check none is empty."""
    if test is None and val is not None:
        test, val = val, None
    if test is None:
        keep, held = stratified_split(train.labels, TEST_FRACTION, TEST_SEED)
        train, test = train.subset(keep), train.subset(held)
    if val is None:
        if not 0.0 < val_fraction < 1.0:
            raise UserError(
                f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}", "pass e.g. 0.1"
            )
        keep, held = stratified_split(train.labels, val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    for name, split in (("train", train), ("val", val), ("test", test)):
        if len(split) == 0:
            raise UserError(
                f"the {name} split of {source} is empty",
                "add samples (a held-out split needs classes with at least two samples)",
            )
    return train, val, test


# ----------------------------------------------------------------------------------------------
# array helpers


def resize_images(images: torch.Tensor, size: tuple[int, int], center_crop: bool = False) -> torch.Tensor:
    """Resize uint8 ``(N, C, H, W)`` to ``size`` = (height, width): antialiased bilinear, rounded
    back to uint8. With ``center_crop`` the central region of the target's aspect ratio is kept."""
    height, width = size
    if images.shape[-2:] == (height, width):
        return images
    if center_crop:
        src_h, src_w = images.shape[-2:]
        if width * src_h >= height * src_w:  # relatively taller: keep the full width
            crop_w, crop_h = src_w, min(src_h, round(src_w * height / width))
        else:
            crop_w, crop_h = min(src_w, round(src_h * width / height)), src_h
        top, left = (src_h - crop_h) // 2, (src_w - crop_w) // 2
        images = images[..., top : top + crop_h, left : left + crop_w]
    out = torch.empty((len(images), images.shape[1], height, width), dtype=torch.uint8)
    for start in range(0, len(images), 2048):
        chunk = images[start : start + 2048].float()
        chunk = F.interpolate(
            chunk, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + 2048] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` with C in {1, 3} → ``channels``: grey is repeated to RGB; RGB becomes
    ITU-R 601 luma with Pillow's fixed-point weights, so arrays and image files agree."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.repeat(1, 3, 1, 1)
    if have == 3 and channels == 1:
        rgb = images.to(torch.int32)
        luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 32768) >> 16
        return luma.to(torch.uint8).unsqueeze(1)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def _array_bundle(
    name: str,
    train: Split,
    val: Split | None,
    test: Split | None,
    class_names: list[str],
    options: Any,
    seed: int,
    source: str,
) -> DataBundle:
    """Complete the splits, then apply ``--channels`` and ``--image-size`` once to each."""
    train, val, test = complete_splits(train, val, test, options.val_fraction, seed, source)
    channels = options.channels or train.images.shape[1]
    height, width = train.images.shape[-2:]
    size = (options.image_size, options.image_size) if options.image_size else (height, width)

    _check_array_memory(train, val, test, channels, size, source)

    def shape(split: Split) -> Split:
        images = convert_channels(split.images, channels)
        images = resize_images(images, size, options.center_crop)
        return Split(labels=split.labels, images=images.contiguous())

    return DataBundle(
        name=name,
        train=shape(train),
        val=shape(val),
        test=shape(test),
        class_names=class_names,
        channels=channels,
        image_size=size,
    )


def _check_array_memory(
    train: Split, val: Split, test: Split, channels: int, size: tuple[int, int], source: str
) -> None:
    """Refuse an ``--image-size`` whose resized arrays would not fit in memory, before allocating them."""
    count = len(train) + len(val) + len(test)
    needed = count * channels * size[0] * size[1]  # uint8: one byte per value
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound
        return
    if needed > memory // 2:
        raise UserError(
            f"{count} images of {source} at {size[0]}×{size[1]}×{channels} need {needed / 2**30:.1f} GiB "
            f"in memory, more than half of this machine's {memory / 2**30:.1f} GiB",
            "pass a smaller --image-size, or arrange the images as a folder (--dataset folder decodes files "
            "batch by batch)",
        )


def _need_root(options: Any, what: str) -> Path:
    if not options.data_root:
        raise UserError(f"--dataset {options.dataset} needs --data-root", f"pass {what}")
    return Path(options.data_root).expanduser()


def _online(urls: list[str], timeout: float = 3.0) -> bool:
    """Whether one of the hosts of ``urls`` accepts a TCP connection (a quick, download-free probe)."""
    for url in urls:
        parsed = urllib.parse.urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


# ----------------------------------------------------------------------------------------------
# digits


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (images float 0..16 of shape (1797, 8, 8), int64 labels).

    Read straight from the CSV that ``sklearn.datasets.load_digits`` reads (the same numbers), without
    importing scikit-learn: its import (SciPy, pandas) is about 1 s of every run's start-up. Falls back
    to ``load_digits`` where the file is not where scikit-learn keeps it.
    """
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as handle:
                data = np.loadtxt(handle, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


def _load_digits(options: Any, seed: int) -> DataBundle:
    """scikit-learn's bundled 8×8 digits (1797 images), values 0..16 scaled to 0..255."""
    values, target = _digits_arrays()
    images = np.rint(values * (255.0 / 16.0)).astype(np.uint8)[:, None]
    train = Split(labels=torch.from_numpy(target), images=torch.from_numpy(images))
    names = [str(i) for i in range(10)]
    return _array_bundle("digits", train, None, None, names, options, seed, "digits")


# ----------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST (IDX files)


def _idx_candidates(directory: Path, stem: str) -> list[Path]:
    dotted = stem.replace("-idx", ".idx")  # the original files are named train-images.idx3-ubyte
    return [directory / f"{base}{ext}" for base in (stem, dotted) for ext in (".gz", "")]


def find_idx_files(root: Path, raw_folder: str) -> tuple[dict[str, Path], list[str]]:
    """Locate the four IDX files flat in ``root`` or in ``root/<raw_folder>/raw`` (torchvision's
    layout). Returns (found paths by role, missing file names)."""
    found: dict[str, Path] = {}
    missing = []
    for role, stem in IDX_FILES.items():
        for directory in (root, root / raw_folder / "raw"):
            hits = [p for p in _idx_candidates(directory, stem) if p.is_file()]
            if hits:
                found[role] = hits[0]
                break
        else:
            missing.append(f"{stem}(.gz)")
    return found, missing


def _load_idx_dataset(options: Any, seed: int) -> DataBundle:
    import torchvision

    fashion = options.dataset == "fashion-mnist"
    tv_class = torchvision.datasets.FashionMNIST if fashion else torchvision.datasets.MNIST
    raw_folder = tv_class.__name__
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    root = _need_root(options, f"the folder that holds {files} (or will receive them when online)")
    found, missing = find_idx_files(root, raw_folder)
    if missing:
        online = _online(list(tv_class.mirrors))
        if not root.is_dir() and not online:
            raise UserError(
                f"--data-root {root} does not exist and there is no internet access to download "
                f"{options.dataset}",
                f"copy the four IDX files ({files}) into that folder",
            )
        where = f"{root} or {root / raw_folder / 'raw'}"
        if online:
            try:
                tv_class(root=str(root), train=True, download=True)
            except Exception as err:
                raise UserError(
                    f"downloading {options.dataset} into {root} failed ({err})", f"put {files} in {where}"
                ) from None
            found, missing = find_idx_files(root, raw_folder)
        if missing:
            raise UserError(
                f"{options.dataset} files missing: {', '.join(missing)} not in {where} "
                "and no internet access",
                f"copy the four IDX files ({files}; gzip or not) into {root}",
            )

    arrays = {role: read_idx(path, ndim=3 if role.endswith("images") else 1) for role, path in found.items()}
    splits = {}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels) or images.dtype != torch.uint8 or labels.dtype != torch.uint8:
            raise UserError(
                f"{options.dataset} {part} files do not match: {len(images)} {images.dtype} images, "
                f"{len(labels)} {labels.dtype} labels ({found[f'{part}_images']})",
                "replace them with the original IDX files",
            )
        if len(labels) and int(labels.max()) > 9:
            raise UserError(
                f"{found[f'{part}_labels']} has label {int(labels.max())} (MNIST has 0..9)",
                "use the original file",
            )
        splits[part] = Split(labels=labels.to(torch.int64), images=images.unsqueeze(1))
    names = FASHION_MNIST_CLASSES if fashion else [str(i) for i in range(10)]
    return _array_bundle(
        options.dataset, splits["train"], None, splits["test"], names, options, seed, str(root)
    )


# ----------------------------------------------------------------------------------------------
# CIFAR


def _load_cifar(options: Any, seed: int) -> DataBundle:
    """CIFAR-10/100 through torchvision. torchvision verifies each batch file's MD5 against the
    published one before it unpickles it, so only the official files are ever unpickled."""
    import torchvision

    tv_class = torchvision.datasets.CIFAR10 if options.dataset == "cifar10" else torchvision.datasets.CIFAR100
    archive = tv_class.filename
    root = _need_root(
        options, f"the folder that holds {tv_class.base_folder}/ (or will receive it when online)"
    )

    def make(train: bool, download: bool):
        return tv_class(root=str(root), train=train, download=download)

    try:
        datasets = make(True, False), make(False, False)
    except RuntimeError:
        # torchvision's download step extracts an archive already in root (MD5-checked) offline
        if not (root / archive).is_file() and not _online([tv_class.url]):
            raise UserError(
                f"{options.dataset} is not in {root} (no intact {root / tv_class.base_folder}) "
                "and there is no internet access",
                f"download {tv_class.url} and extract {archive} into {root}",
            ) from None
        try:
            datasets = make(True, True), make(False, True)
        except Exception as err:
            raise UserError(
                f"downloading {options.dataset} into {root} failed ({err})",
                f"download {tv_class.url} and extract it into {root}",
            ) from None
    train, test = (
        Split(
            labels=torch.as_tensor(ds.targets, dtype=torch.int64),
            images=torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous(),
        )
        for ds in datasets
    )
    names = list(datasets[0].classes)
    return _array_bundle(options.dataset, train, None, test, names, options, seed, str(root))


# ----------------------------------------------------------------------------------------------
# npz


def _npz_images(array: np.ndarray, key: str, path: Path) -> torch.Tensor:
    fix = "store uint8 images as N×H×W (grey) or N×H×W×3 (RGB)"
    if array.dtype != np.uint8:
        raise UserError(f"{path}: {key} has dtype {array.dtype}, not uint8", fix)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif not (array.ndim == 4 and array.shape[1] in (1, 3)):
        raise UserError(f"{path}: {key} has shape {array.shape}", fix)
    height, width = array.shape[-2:]
    if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
        raise UserError(
            f"{path}: {key} has images of shape {height}×{width}",
            f"store images of 1 to {MAX_IMAGE_SIDE} pixels a side",
        )
    return torch.from_numpy(np.ascontiguousarray(array))


def _npz_labels(array: np.ndarray, key: str, path: Path) -> torch.Tensor:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise UserError(
            f"{path}: {key} has shape {array.shape} (multi-label data is not supported)",
            "store one class index per image, shape N or N×1",
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise UserError(
            f"{path}: {key} must hold integer class indices, got {array.dtype}", "store integer labels"
        )
    if len(array) and (array.min() < 0 or array.max() >= MAX_CLASSES):
        bad = array.min() if array.min() < 0 else array.max()
        raise UserError(
            f"{path}: {key} holds the label {int(bad)}, outside 0..{MAX_CLASSES - 1}",
            "store class indices 0..K-1",
        )
    return torch.from_numpy(array.astype(np.int64))


def _load_npz(options: Any, seed: int) -> DataBundle:
    """An .npz with ``{train,val,test}_{images,labels}`` (the MedMNIST layout); val and test optional."""
    path = _need_root(options, "an .npz file with train_images/train_labels (and val_*, test_*)")
    if not path.is_file():
        raise UserError(
            f"--data-root {path} does not exist or is not a file", "pass the path of an .npz file"
        )
    keys = [f"{part}_{kind}" for part in ("train", "val", "test") for kind in ("images", "labels")]
    fix = "pass an intact .npz (numpy.savez) of uint8 images and integer labels"
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a plain .npy array
            raise UserError(f"{path} is not an .npz archive", fix)
        with loaded as npz:
            arrays = {key: npz[key] for key in keys if key in npz.files}
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError, zlib.error) as err:
        raise UserError(f"cannot read {path} as an .npz file ({' '.join(str(err).split())})", fix) from None

    splits: dict[str, Split | None] = {}
    for part in ("train", "val", "test"):
        have = [f"{part}_{kind}" in arrays for kind in ("images", "labels")]
        if not any(have):
            splits[part] = None
            continue
        if not all(have):
            raise UserError(f"{path} has only one of {part}_images and {part}_labels", "store both")
        images = _npz_images(arrays[f"{part}_images"], f"{part}_images", path)
        labels = _npz_labels(arrays[f"{part}_labels"], f"{part}_labels", path)
        if len(images) != len(labels):
            raise UserError(
                f"{path}: {len(images)} {part} images but {len(labels)} labels", "store one label per image"
            )
        splits[part] = Split(labels=labels, images=images)
    train = splits["train"]
    if train is None:
        raise UserError(
            f"{path} has no train_images/train_labels", "store the training split under those names"
        )
    shapes = {tuple(s.images.shape[1:]) for s in splits.values() if s is not None}
    if len(shapes) > 1:
        raise UserError(
            f"{path}: the splits' images differ in shape {sorted(shapes)}", "store one image shape"
        )
    if len(train) == 0:
        raise UserError(f"{path} has no training samples (train_labels is empty)", "store the training split")
    num_classes = _npz_classes(splits, path)
    names = [str(i) for i in range(num_classes)]
    return _array_bundle(path.stem, train, splits["val"], splits["test"], names, options, seed, str(path))


def _npz_classes(splits: dict[str, Split | None], path: Path) -> int:
    """The number of classes: train's labels must be 0..K-1 (K >= 2), each with a sample, and the
    val/test labels among them (a label train lacks would be tested on a class never trained)."""
    train_labels = torch.unique(splits["train"].labels)
    num_classes = int(train_labels.max()) + 1
    if len(train_labels) < 2:
        raise UserError(f"{path} has a single class in train_labels", "store labels of two or more classes")
    if len(train_labels) != num_classes:
        missing = sorted(set(range(num_classes)) - set(train_labels.tolist()))
        raise UserError(
            f"{path}: train_labels go up to {num_classes - 1} but have no sample of class "
            f"{', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}",
            "store class indices 0..K-1, each with training samples",
        )
    for part in ("val", "test"):
        split = splits[part]
        if split is None or not len(split):
            continue
        unseen = sorted(set(torch.unique(split.labels).tolist()) - set(train_labels.tolist()))
        if unseen:
            raise UserError(
                f"{path}: {part}_labels hold class {', '.join(map(str, unseen[:5]))}, "
                "which train_labels lack",
                "use the same classes in every split",
            )
    return num_classes


# ----------------------------------------------------------------------------------------------
# image folders


def _load_folder(options: Any, seed: int) -> DataBundle:
    """A folder or zip of class sub-folders, optionally under train/val/test (see ``folder.py``),
    decoded once (from the cache when it is valid, see ``folder_cache.py``)."""
    from ignite_cv.utils.distributed import say

    root = _need_root(options, "a folder (or .zip) of class sub-folders, optionally under train/ val/ test/")
    channels = options.channels or FOLDER_CHANNELS
    size = options.image_size or FOLDER_IMAGE_SIZE
    listing = list_tree(root)
    cache_dir = resolve_cache_dir(options)
    decoded = decode_folder(
        listing,
        DecodeSettings(channels, (size, size), bool(options.center_crop)),
        cache_dir=cache_dir,
        processes=decode_processes(options.workers),
        strict=options.strict_data,
        say=say,
        show_progress=_rank() == 0,
    )
    scan = finish_scan(listing, decoded.reasons, options.strict_data)
    parts = {
        name: Split(labels=torch.tensor(labels, dtype=torch.int64), files=refs)
        for name, (refs, labels) in scan.splits.items()
    }
    train, val, test = complete_splits(
        parts["train"], parts.get("val"), parts.get("test"), options.val_fraction, seed, str(root)
    )
    if decoded.images is not None:
        readable = (ref for (_, _, ref), why in zip(listing.candidates, decoded.reasons) if why is None)
        row_of = {ref: row for row, ref in enumerate(readable)}
        splits = (train, val, test)
        rows = [np.fromiter((row_of[ref] for ref in s.files), np.int64, count=len(s)) for s in splits]
        pixels = split_pixels(decoded, rows, cache_dir)
        train, val, test = (
            s if images is None else Split(labels=s.labels, images=torch.from_numpy(images), files=s.files)
            for s, images in zip(splits, pixels)
        )
    name = root.name[: -len(".zip")] if root.name.lower().endswith(".zip") else root.name
    return DataBundle(
        name=name or "folder",
        train=train,
        val=val,
        test=test,
        class_names=scan.class_names,
        channels=channels,
        image_size=(size, size),
        skipped=scan.skipped,
    )


def _rank() -> int:
    import ignite.distributed as idist

    return idist.get_rank()


_SOURCES: dict[str, Callable[[Any, int], DataBundle]] = {
    "digits": _load_digits,
    "mnist": _load_idx_dataset,
    "fashion-mnist": _load_idx_dataset,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "npz": _load_npz,
    "folder": _load_folder,
}
