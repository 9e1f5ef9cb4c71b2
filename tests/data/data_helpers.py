"""Helpers of the data tests: options and tiny image trees (shared real data: ``tests.conftest``)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ignite_cv.data.options import DataOptions


def make_options(**overrides) -> DataOptions:
    """DataOptions with ``overrides``; no worker processes unless asked (fast, deterministic tests)."""
    values = {"workers": 0, **overrides}
    return DataOptions(**values)


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 10), fmt: str | None = None) -> None:
    """A small RGB image filled with ``(value, 255 - value, value // 2)``; format from the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (value, 255 - value, value // 2)
    Image.new("RGB", size, colour).save(path, format=fmt)


def make_class_tree(root: Path, counts: dict[str, int], start: int = 0) -> None:
    """``root/CLASS/img_k.png|jpg`` (alternating PNG and JPEG), ``counts[CLASS]`` images each."""
    for c, (name, n) in enumerate(sorted(counts.items())):
        for k in range(n):
            ext = ".png" if k % 2 == 0 else ".jpg"
            write_image(root / name / f"img_{start + k:03d}{ext}", value=(40 * c + k) % 256)


def zip_tree(root: Path, archive: Path, prefix: str = "") -> Path:
    """Zip the files under ``root`` with member names ``prefix + relative path`` (directory entries too)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            name = prefix + path.relative_to(root).as_posix()
            if path.is_dir():
                zf.writestr(name + "/", b"")
            else:
                zf.write(path, name)
    return archive


def _cmyk_jpeg(path: Path) -> None:
    Image.new("CMYK", (10, 10), (255, 0, 0, 0)).save(path, "JPEG", quality=95)


def _png16(path: Path) -> None:
    values = np.full((10, 10), 65535, dtype=np.uint16)
    values[0, 0] = 0
    values[0, 1] = 32896  # round(32896 * 255 / 65535) = 128
    Image.fromarray(values).save(path)


def _rgba_png(path: Path) -> None:
    pixels = np.zeros((10, 10, 4), dtype=np.uint8)
    pixels[...] = (200, 100, 50, 128)
    pixels[0, 0] = (255, 255, 255, 0)  # fully transparent white becomes black
    Image.fromarray(pixels, "RGBA").save(path)


def make_messy_tree(root: Path) -> Path:
    """50 good images in each of two classes plus, in 'good': a corrupt JPEG, a truncated JPEG, a text
    file (3 unreadable), a CMYK JPEG, a 16-bit PNG, an RGBA PNG and an upper-case .JPG (4 readable)."""
    make_class_tree(root, {"good": 50, "more": 50})
    cls = root / "good"
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(jpeg, "JPEG")
    (cls / "corrupt.jpg").write_bytes(jpeg.getvalue()[:20] + bytes(range(256)) * 4)
    (cls / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (cls / "notes.txt").write_text("not an image\n")
    _cmyk_jpeg(cls / "zz_cmyk.jpg")
    _png16(cls / "zz_deep.png")
    _rgba_png(cls / "zz_rgba.png")
    write_image(cls / "UPPER.JPG", 9, fmt="JPEG")  # extensions are case-insensitive
    (root / ".DS_Store").write_bytes(b"\x00junk")  # hidden: ignored silently
    return root


def binary_digits_npz(path: Path) -> Path:
    """scikit-learn's digits 3 (label 0) and 8 (label 1), 357 grey 8×8 images, as a train-only .npz
    (sources hold out 72 as the test split and a validation share of the rest)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, (3, 8))
    images = np.rint(digits.images[keep] * (255.0 / 16.0)).astype(np.uint8)
    np.savez(path, train_images=images, train_labels=(digits.target[keep] == 8).astype(np.int64))
    return path
