"""The cache file: round trip in memory and memory-mapped, and every way a file must be refused."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import PIL
import pytest

from ignite_cv.data import decode_cache
from ignite_cv.data.decode_cache import DATA_OFFSET, DecodeSettings, StaleEntry, read_entry, write_entry
from ignite_cv.data.folder import list_tree
from tests.data.data_helpers import make_class_tree

SETTINGS = DecodeSettings(channels=3, size=(4, 5), center_crop=False)
KEY = "k" * 64


def _pixels(rows: int) -> np.ndarray:
    rng = np.random.default_rng(rows)
    return rng.integers(0, 256, size=(rows, 3, 4, 5), dtype=np.uint8)


@pytest.fixture
def entry(tmp_path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "e.icvcache"
    images = _pixels(7)
    write_entry(path, images, KEY, SETTINGS, 9, [(2, "bad one"), (8, "bad\ntwo")])
    return path, images


@pytest.mark.parametrize("in_memory", [True, False])
def test_round_trip(entry, in_memory):
    path, images = entry
    got = read_entry(path, KEY, SETTINGS, 9, in_memory=in_memory)
    assert got.memory_mapped is (not in_memory)
    assert isinstance(got.images, np.memmap) is (not in_memory)
    assert got.images.shape == (7, 3, 4, 5) and np.array_equal(got.images, images)
    assert got.unreadable == [(2, "bad one"), (8, "bad\ntwo")]
    assert got.images.flags.writeable  # copy-on-write: torch.from_numpy needs no copy, the file stays
    got.images[0] = 0
    assert np.array_equal(read_entry(path, KEY, SETTINGS, 9, in_memory=True).images, images)
    assert path.stat().st_mode & 0o777 == decode_cache.FILE_MODE


def test_absent_is_none(tmp_path):
    assert read_entry(tmp_path / "none.icvcache", KEY, SETTINGS, 9, in_memory=True) is None


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _flip(p, DATA_OFFSET + 17), "damaged (checksum of its pixels)"),
        (lambda p: _flip(p, p.stat().st_size - 3), "damaged (checksum of its file list)"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "truncated or padded"),
        (lambda p: p.write_bytes(p.read_bytes() + b"x"), "truncated or padded"),
        (lambda p: p.write_bytes(p.read_bytes()[:20]), "truncated (20 bytes)"),
        (lambda p: _patch(p, 0, b"NOTACACH"), "not a cache file"),
        (lambda p: _patch(p, 8, struct.pack("<I", 99)), "written by another version of ignite_cv (format 99"),
    ],
)
def test_damaged_or_foreign_files_are_refused(entry, damage, message):
    path, _ = entry
    damage(path)
    for in_memory in (True, False):
        with pytest.raises(StaleEntry) as err:
            read_entry(path, KEY, SETTINGS, 9, in_memory=in_memory)
        assert str(err.value).startswith(message)


def test_other_key_count_shape_or_pillow_is_refused(entry, monkeypatch):
    path, _ = entry
    with pytest.raises(StaleEntry, match="another state of the folder"):
        read_entry(path, "x" * 64, SETTINGS, 9, in_memory=True)
    with pytest.raises(StaleEntry, match="another state of the folder"):
        read_entry(path, KEY, SETTINGS, 10, in_memory=True)
    with pytest.raises(StaleEntry, match="holds 3×4×5 images, not 1×4×5"):
        read_entry(path, KEY, DecodeSettings(1, (4, 5), False), 9, in_memory=True)
    real = PIL.__version__
    monkeypatch.setattr(PIL, "__version__", "0.1")
    with pytest.raises(StaleEntry, match=f"decoded by Pillow {real} \\(now 0.1\\)"):
        read_entry(path, KEY, SETTINGS, 9, in_memory=True)


def test_names_follow_files_sizes_mtimes_and_settings(tmp_path):
    make_class_tree(tmp_path / "t", {"a": 2, "b": 2})
    listing = list_tree(tmp_path / "t")
    first = decode_cache.content_digest(listing)
    assert decode_cache.content_digest(list_tree(tmp_path / "t")) == first
    image = Path(listing.candidates[0][2])
    stat = image.stat()
    import os

    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert decode_cache.content_digest(list_tree(tmp_path / "t")) != first
    stem = decode_cache.entry_stem(listing.root, SETTINGS)
    assert stem == decode_cache.entry_stem(listing.root, DecodeSettings(3, (4, 5), False))
    assert stem != decode_cache.entry_stem(listing.root, DecodeSettings(3, (4, 5), True))
    assert stem != decode_cache.entry_stem(listing.root, DecodeSettings(1, (4, 5), False))
    assert decode_cache.entry_key(first, SETTINGS) != decode_cache.entry_key(
        first, DecodeSettings(3, (5, 4), False)
    )


def test_remove_stale_keeps_the_current_entry_and_other_settings(tmp_path):
    names = [
        "aaaa-bb-111.icvcache",
        "aaaa-bb-222.icvcache",
        "aaaa-bb-111-sub.icvcache",
        "aaaa-cc-333.icvcache",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".aaaa-bb-222.icvcache.x1y2.tmp").write_bytes(b"x")  # left by a killed builder
    decode_cache.remove_stale(tmp_path, "aaaa-bb", keep="aaaa-bb-111")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aaaa-bb-111-sub.icvcache",
        "aaaa-bb-111.icvcache",
        "aaaa-cc-333.icvcache",
    ]
