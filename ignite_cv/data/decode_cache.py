"""The decoded-image cache file: the uint8 pixels of an image folder at one size, crop and channel count.

Layout of one ``.icvcache`` file::

    offset 0       prefix (64 bytes, little-endian): magic, format version, pixel offset, rows, C, H, W,
                   CRC-32 of the pixels, meta offset, meta length, CRC-32 of the meta
    offset 4096    pixels: uint8 (rows, C, H, W), C-contiguous (page-aligned, so it can be memory-mapped)
    after them     meta: UTF-8 JSON {"key", "settings", "files", "unreadable": [[index, reason], ...]}

Rows are the readable files in the order of the decode pass; ``unreadable`` lists the others (their
index among all ``files`` and the reason), so a cached run reports exactly what a decoding run reports.

The name is ``<source>-<settings>-<content>.icvcache``: digests of the folder, of the decode settings,
and of the file list with every file's size and modification time (:func:`content_digest`). A changed,
added or removed file gives a new name; when a new entry is written, the older entries of the same
folder and settings are deleted (:func:`remove_stale`).

A file is trusted only when the magic, the format version, the settings (including the Pillow version
that decoded it), the full key, every size and both CRC-32s check out; otherwise :class:`StaleEntry`
says why in one line and the caller rebuilds it. zlib's CRC-32 runs at several GB/s, so checking 3,000
images of 3×64×64 costs about 10 ms. Files appear only by atomic rename (``ignite_cv.utils.atomic``);
builders hold an exclusive lock (``fcntl.flock``, where the OS has it) on ``<source>-<settings>.lock``,
so a second process waits and then reads the first one's file instead of decoding again. Two builders
without a lock would each rename a complete, identical file: the last one wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import PIL

from ignite_cv.data.folder import FolderListing, parse_zip_ref

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builders write identical files
    fcntl = None

#: Layout version of the file; a file of another version is rebuilt.
FORMAT_VERSION = 1
MAGIC = b"ICVDCACH"
#: Where the pixels start (one page, so that memory-mapping them is aligned).
DATA_OFFSET = 4096
SUFFIX = ".icvcache"
_PREFIX = struct.Struct("<8sI4xQQIIIIQQI4x")  # 64 bytes
#: Permissions of a cache file (mkstemp's 0600 would hide a shared cache from other users).
FILE_MODE = 0o644
#: Bytes per CRC-32 update (bounds the memory a memory-mapped check touches at once).
_CRC_CHUNK = 64 * 2**20


class StaleEntry(Exception):
    """A cache file that must not be used; the message is the reason, one line."""


@dataclass(frozen=True)
class DecodeSettings:
    """How the files are decoded (every field changes the pixels)."""

    channels: int
    size: tuple[int, int]  # (height, width)
    center_crop: bool

    def as_dict(self) -> dict[str, Any]:
        """The settings with the versions that shape the pixels: this layout's and Pillow's."""
        return {**asdict(self), "size": list(self.size), "format": FORMAT_VERSION, "pillow": PIL.__version__}


@dataclass
class CacheEntry:
    """A verified cache file: ``images`` uint8 ``(rows, C, H, W)`` (in memory, or memory-mapped
    copy-on-write), and the unreadable files as ``(index, reason)``."""

    path: Path
    images: np.ndarray
    unreadable: list[tuple[int, str]]
    memory_mapped: bool


# ----------------------------------------------------------------------------------------------
# names


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _zip_stat(archive: str, cache: dict[str, Any]) -> Any:
    if archive not in cache:
        try:
            st = os.stat(archive)
            with zipfile.ZipFile(archive) as zf:
                members = {i.filename: (i.file_size, i.CRC, i.date_time) for i in zf.infolist()}
            cache[archive] = (st.st_size, st.st_mtime_ns, members)
        except (OSError, zipfile.BadZipFile):
            cache[archive] = (-1, -1, {})
    return cache[archive]


def _file_state(ref: str, zips: dict[str, Any]) -> str:
    """Size and modification time of a file, or of a zip member (its size, CRC and date, and the
    archive's size and mtime); ``-1 -1`` for a file that cannot be stat-ed (the pass reports it)."""
    parsed = parse_zip_ref(ref)
    if parsed is None:
        try:
            st = os.stat(ref)
        except OSError:
            return "-1 -1"
        return f"{st.st_size} {st.st_mtime_ns}"
    archive, member = parsed
    size, mtime, members = _zip_stat(archive, zips)
    return f"{size} {mtime} {members.get(member)}"


def content_digest(listing: FolderListing) -> str:
    """sha256 of the class names and of every candidate's split, label, reference, size and mtime."""
    digest = hashlib.sha256()
    digest.update(json.dumps(listing.class_names).encode())
    zips: dict[str, Any] = {}
    for split, label, ref in listing.candidates:
        line = f"{split}\t{label}\t{ref}\t{_file_state(ref, zips)}\n"
        digest.update(line.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def entry_stem(root: Path, settings: DecodeSettings) -> str:
    """``<source>-<settings>``: what the entries (and the lock) of one folder at one setting share."""
    source = _digest(os.path.abspath(root))[:16]
    shape = _digest(json.dumps([settings.channels, list(settings.size), settings.center_crop]))[:8]
    return f"{source}-{shape}"


def entry_key(content: str, settings: DecodeSettings) -> str:
    """The full key stored in (and checked against) a file."""
    return _digest(content + json.dumps(settings.as_dict(), sort_keys=True))


# ----------------------------------------------------------------------------------------------
# reading


def _crc(array: np.ndarray) -> int:
    flat = array.reshape(-1)
    crc = 0
    for start in range(0, flat.size, _CRC_CHUNK):
        crc = zlib.crc32(flat[start : start + _CRC_CHUNK], crc)
    return crc


def read_entry(
    path: Path, key: str, settings: DecodeSettings, count: int, in_memory: bool
) -> CacheEntry | None:
    """The entry at ``path`` for ``count`` files, or None when there is none.

    ``in_memory``: read the pixels into memory, else memory-map them (copy-on-write: writable, never
    written back). Raises :class:`StaleEntry` with the reason when the file is damaged, was written by
    another version or for other files.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with block below)
    except FileNotFoundError:
        return None
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        raw = handle.read(_PREFIX.size)
        if len(raw) < _PREFIX.size:
            raise StaleEntry(f"truncated ({file_size} bytes)")
        magic, version, data_offset, rows, c, h, w, data_crc, meta_offset, meta_len, meta_crc = (
            _PREFIX.unpack(raw)
        )
        if magic != MAGIC:
            raise StaleEntry("not a cache file (bad magic)")
        if version != FORMAT_VERSION:
            raise StaleEntry(
                f"written by another version of ignite_cv (format {version}, now {FORMAT_VERSION})"
            )
        if (c, h, w) != (settings.channels, *settings.size) or data_offset != DATA_OFFSET:
            raise StaleEntry(
                f"holds {c}×{h}×{w} images, not {settings.channels}×{settings.size[0]}×{settings.size[1]}"
            )
        if meta_offset != data_offset + rows * c * h * w or meta_offset + meta_len != file_size:
            raise StaleEntry(f"truncated or padded ({file_size} bytes for {rows} images)")
        handle.seek(meta_offset)
        meta_bytes = handle.read(meta_len)
        if zlib.crc32(meta_bytes) != meta_crc:
            raise StaleEntry("damaged (checksum of its file list)")
        try:
            meta = json.loads(meta_bytes.decode("utf-8", "surrogatepass"))
        except ValueError:
            raise StaleEntry("damaged (unreadable file list)") from None
        stored = meta.get("settings", {})
        if stored.get("pillow") != PIL.__version__:
            raise StaleEntry(f"decoded by Pillow {stored.get('pillow')} (now {PIL.__version__})")
        if meta.get("key") != key or meta.get("files") != count:
            raise StaleEntry("written for another state of the folder")
        unreadable = [(int(i), str(reason)) for i, reason in meta.get("unreadable", [])]
        if rows + len(unreadable) != count:
            raise StaleEntry(f"inconsistent ({rows} images + {len(unreadable)} unreadable for {count} files)")
        shape = (rows, c, h, w)
        if in_memory:
            handle.seek(data_offset)
            images = np.fromfile(handle, dtype=np.uint8, count=rows * c * h * w).reshape(shape)
        elif rows:
            images = np.memmap(path, dtype=np.uint8, mode="c", offset=data_offset, shape=shape)
        else:
            images = np.empty(shape, dtype=np.uint8)
    if _crc(images) != data_crc:
        raise StaleEntry("damaged (checksum of its pixels)")
    return CacheEntry(path, images, unreadable, memory_mapped=not in_memory and rows > 0)


# ----------------------------------------------------------------------------------------------
# writing


class EntryWriter:
    """Streams the rows of one entry into an open temporary file (see :func:`writing_entry`)."""

    def __init__(self, handle: BinaryIO, shape_chw: Sequence[int]) -> None:
        self.handle = handle
        self.shape_chw = tuple(shape_chw)
        self.rows = 0
        self.crc = 0
        handle.write(b"\0" * DATA_OFFSET)

    def write(self, images: np.ndarray) -> None:
        """Append uint8 ``(k, C, H, W)`` rows (C-contiguous)."""
        if images.shape[1:] != self.shape_chw or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 (k, {self.shape_chw}), got {images.dtype} {images.shape}")
        data = np.ascontiguousarray(images)
        self.handle.write(memoryview(data).cast("B"))
        self.crc = zlib.crc32(memoryview(data).cast("B"), self.crc)
        self.rows += len(images)

    def finish(
        self, key: str, settings: DecodeSettings, count: int, unreadable: list[tuple[int, str]]
    ) -> None:
        """Write the meta and the prefix (the entry is complete once its ``with`` block exits)."""
        meta = {
            "key": key,
            "settings": settings.as_dict(),
            "files": count,
            "unreadable": [[i, reason] for i, reason in unreadable],
        }
        meta_bytes = json.dumps(meta, ensure_ascii=False).encode("utf-8", "surrogatepass")
        c, h, w = self.shape_chw
        meta_offset = DATA_OFFSET + self.rows * c * h * w
        self.handle.write(meta_bytes)
        self.handle.seek(0)
        self.handle.write(
            _PREFIX.pack(
                MAGIC, FORMAT_VERSION, DATA_OFFSET, self.rows, c, h, w, self.crc, meta_offset,
                len(meta_bytes), zlib.crc32(meta_bytes),
            )
        )  # fmt: skip
        self.handle.flush()


@contextlib.contextmanager
def writing_entry(path: Path, shape_chw: Sequence[int]) -> Iterator[EntryWriter]:
    """A writer into a temporary file beside ``path``; on a clean exit (after ``finish``) it is fsynced
    and renamed onto ``path``, on an exception it is removed. Raises OSError when the folder cannot be
    written (read-only, full)."""
    from ignite_cv.utils.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        os.chmod(tmp, FILE_MODE)
        yield EntryWriter(handle, shape_chw)


def write_entry(
    path: Path, images: np.ndarray, key: str, settings: DecodeSettings, count: int,
    unreadable: list[tuple[int, str]],
) -> None:  # fmt: skip
    """Write a whole entry at once (atomically)."""
    with writing_entry(path, images.shape[1:]) as writer:
        for start in range(0, len(images), 1024):
            writer.write(images[start : start + 1024])
        writer.finish(key, settings, count, unreadable)


# ----------------------------------------------------------------------------------------------
# locking and housekeeping


@contextlib.contextmanager
def entry_lock(cache_dir: Path, stem: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the entries ``stem-*`` (a no-op where the OS has no ``flock``).
    ``on_wait()`` is called once when another process holds it. Raises OSError when the lock file
    cannot be created (read-only folder)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(cache_dir / f"{stem}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_stale(cache_dir: Path, stem: str, keep: str) -> None:
    """Delete the entries of ``stem`` other than those whose name starts with ``keep`` and, where
    builders lock, temporary files left by killed ones (call with the lock held: no live builder then
    has one). A process that has an old entry memory-mapped keeps reading it (POSIX keeps an unlinked
    file until it is closed)."""
    for path in cache_dir.glob(f"{stem}-*{SUFFIX}"):
        if not path.name.startswith(keep):
            with contextlib.suppress(OSError):
                path.unlink()
    if fcntl is None:
        return
    for path in cache_dir.glob(f".{stem}-*{SUFFIX}.*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
