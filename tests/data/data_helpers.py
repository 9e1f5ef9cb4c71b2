"""Helpers of the data tests: options and tiny image trees (shared real data: ``tests.conftest``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

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
