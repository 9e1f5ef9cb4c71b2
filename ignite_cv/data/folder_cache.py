"""An image folder decoded once: from the cache when it is valid, else in one parallel pass that fills it.

:func:`decode_folder` is what a folder source calls after :func:`ignite_cv.data.folder.list_tree`:

1. The entry named after the folder, the decode settings and the files' sizes and mtimes
   (:mod:`ignite_cv.data.decode_cache`) is read and verified. Valid: nothing is decoded.
2. Otherwise, holding the entry's lock, it is read again (another process may just have written it),
   then every file is decoded once (:mod:`ignite_cv.data.decode_pass`, all cores) with a progress line;
   the pass finds the unreadable files and streams the pixels into memory and into the new entry.
3. A cache folder that cannot be written (read-only, full) costs one line: the run goes on with the
   pixels in memory. ``cache_dir=None`` (``--no-cache``) skips steps 1 and the writing.

Pixels that fit ``memory_budget`` come back in memory; larger ones come back memory-mapped from the
entry (pages are read from disk as batches need them), or, when no entry can be written, not at all:
the pass then only validates and the caller keeps decoding the files in DataLoader workers.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ignite_cv.data import decode_cache
from ignite_cv.data.decode_cache import CacheEntry, DecodeSettings, StaleEntry
from ignite_cv.data.decode_pass import DecodedChunk, decode_chunks
from ignite_cv.data.folder import FolderListing, unreadable_error
from ignite_cv.data.progress import CountProgress
from ignite_cv.utils.devices import available_cpus

#: Decoded pixels up to this many bytes are held in memory (as ``--data-on-device``'s host budget).
DEFAULT_MEMORY_BUDGET = 4 * 2**30
#: Name of the cache folder inside ``--output-dir`` when ``--cache-dir`` is not given.
CACHE_FOLDER = ".data-cache"


@dataclass
class DecodedFolder:
    """The outcome of :func:`decode_folder` for the candidates of a listing, in order.

    ``images``: uint8 ``(rows, C, H, W)`` of the readable candidates (in memory, or memory-mapped when
    ``memory_mapped``), or None when the pixels could not be kept (too large for memory and no cache).
    ``reasons``: per candidate, None (readable) or why it is not. ``status``: ``"reused"`` (read from
    the cache), ``"built"`` (decoded and cached), ``"uncached"`` (decoded, not cached).
    ``path``: the cache entry, when there is one.
    """

    images: np.ndarray | None
    reasons: list[str | None]
    status: str
    memory_mapped: bool = False
    path: Path | None = None


def resolve_cache_dir(options: Any) -> Path | None:
    """The cache folder ``options`` ask for: None with ``no_cache``; ``cache_dir`` when set; else
    ``<output_dir>/.data-cache`` when the options have an ``output_dir`` (a training run), else None
    (tools that write no run folder cache nothing unless given ``--cache-dir``)."""
    if getattr(options, "no_cache", False):
        return None
    if getattr(options, "cache_dir", ""):
        return Path(options.cache_dir).expanduser()
    output_dir = getattr(options, "output_dir", "")
    return Path(output_dir).expanduser() / CACHE_FOLDER if output_dir else None


def decode_processes(workers: int) -> int:
    """Processes of the decode pass: every core this process may use, or none (decode in this
    process) with ``--workers 0``."""
    return available_cpus() if workers > 0 else 0


def _reasons(count: int, unreadable: list[tuple[int, str]]) -> list[str | None]:
    reasons: list[str | None] = [None] * count
    for index, reason in unreadable:
        reasons[index] = reason
    return reasons


class _Pass:
    """Consumes the decode pass in order: pixels into memory (when kept), reasons, ``--strict-data``."""

    def __init__(
        self, listing: FolderListing, keep: np.ndarray | None, strict: bool, progress: CountProgress
    ):
        self.listing, self.keep, self.strict, self.progress = listing, keep, strict, progress
        self.rows = 0
        self.unreadable: list[tuple[int, str]] = []

    def take(self, chunk: DecodedChunk) -> None:
        if self.strict and chunk.unreadable:
            index, reason = chunk.unreadable[0]
            raise unreadable_error(self.listing.candidates[index][2], reason)
        if self.keep is not None:
            self.keep[self.rows : self.rows + len(chunk.images)] = chunk.images
        self.rows += len(chunk.images)
        self.unreadable += chunk.unreadable
        self.progress.advance(chunk.count)


def decode_folder(
    listing: FolderListing,
    settings: DecodeSettings,
    *,
    cache_dir: Path | None,
    processes: int,
    strict: bool = False,
    memory_budget: int | None = None,
    say: Callable[[str], None] = print,
    show_progress: bool = True,
) -> DecodedFolder:
    """The pixels and reasons of every candidate of ``listing`` (see the module docstring).

    Args:
        settings: size, crop and channels to decode to.
        cache_dir: the cache folder (created when missing), or None for no cache.
        processes: decode processes (0 or 1: this process).
        strict: stop at the first unreadable file (in path order) with :class:`UserError`.
        memory_budget: pixels above this many bytes are memory-mapped from the cache instead
            (None: :data:`DEFAULT_MEMORY_BUDGET`).
        say: where one-line messages go (the caller's rank-0 print).
        show_progress: draw the progress line of the pass (rank 0).

    Raises:
        UserError: with ``strict``, for the first unreadable file; a decode process died.
    """
    count = len(listing.candidates)
    c, (h, w) = settings.channels, settings.size
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    in_memory = count * c * h * w <= budget
    if cache_dir is None:
        return _decode(listing, settings, None, None, processes, strict, in_memory, say, show_progress)

    stem = decode_cache.entry_stem(listing.root, settings)
    content = decode_cache.content_digest(listing)
    key = decode_cache.entry_key(content, settings)
    path = cache_dir / f"{stem}-{content[:16]}{decode_cache.SUFFIX}"
    entry, problem = _try_read(path, key, settings, count, in_memory)
    if entry is None:
        with contextlib.ExitStack() as stack:
            try:
                on_wait = lambda: say(f"data cache: waiting for another process building {path}")  # noqa: E731
                stack.enter_context(decode_cache.entry_lock(cache_dir, stem, on_wait))
            except OSError as err:  # no lock file: the folder is read-only (or not a folder)
                say(f"data cache: cannot use {cache_dir} ({_os_reason(err)}); continuing without the cache")
                return _decode(
                    listing, settings, None, None, processes, strict, in_memory, say, show_progress
                )
            entry, problem = _try_read(path, key, settings, count, in_memory)  # built while we waited?
            if entry is None:
                if problem is not None:
                    say(f"data cache: {path} cannot be used ({problem}); rebuilding it")
                decode_cache.remove_stale(cache_dir, stem, keep=f"{stem}-{content[:16]}")
                return _decode(listing, settings, path, key, processes, strict, in_memory, say, show_progress)
    reasons = _reasons(count, entry.unreadable)
    if strict and entry.unreadable:
        index, reason = entry.unreadable[0]
        raise unreadable_error(listing.candidates[index][2], reason)
    say(f"data cache: {len(entry.images)} decoded images from {entry.path}")
    return DecodedFolder(entry.images, reasons, "reused", entry.memory_mapped, entry.path)


def _try_read(path: Path, key: str, settings: DecodeSettings, count: int, in_memory: bool):
    """(entry, None), (None, None) when absent, or (None, reason) when it must be rebuilt."""
    try:
        return decode_cache.read_entry(path, key, settings, count, in_memory), None
    except StaleEntry as err:
        return None, str(err)
    except OSError as err:
        return None, f"unreadable ({_os_reason(err)})"


def _os_reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


class _EntrySink:
    """The entry being written beside the pass, or nothing once writing it failed (read-only or full
    folder: one line said, the temporary file removed). Only its own OSErrors are caught here."""

    def __init__(self, path: Path | None, shape_chw: tuple[int, int, int], say: Callable[[str], None]):
        self.path, self.say = path, say
        self._stack = contextlib.ExitStack()
        self.writer: decode_cache.EntryWriter | None = None
        if path is not None:
            try:
                self.writer = self._stack.enter_context(decode_cache.writing_entry(path, shape_chw))
            except OSError as err:
                self._failed(err)

    def write(self, images: np.ndarray) -> None:
        if self.writer is not None:
            try:
                self.writer.write(images)
            except OSError as err:
                self.abort(err)
                self._failed(err)

    def commit(self, key: str, settings: DecodeSettings, count: int, unreadable: list) -> bool:
        """Complete the entry (fsync, rename); whether it is now in place."""
        if self.writer is None:
            return False
        try:
            self.writer.finish(key, settings, count, unreadable)
            self._stack.close()
        except OSError as err:
            self.abort(err)
            self._failed(err)
            return False
        return True

    def abort(self, err: BaseException) -> None:
        """Remove the temporary file (the entry is not written)."""
        self.writer = None
        self._stack.__exit__(type(err), err, err.__traceback__)

    def _failed(self, err: OSError) -> None:
        reason = err.strerror or type(err).__name__
        self.say(f"data cache: cannot write {self.path} ({reason}); continuing without the cache")


def _decode(
    listing: FolderListing,
    settings: DecodeSettings,
    path: Path | None,
    key: str | None,
    processes: int,
    strict: bool,
    in_memory: bool,
    say: Callable[[str], None],
    show_progress: bool,
) -> DecodedFolder:
    """One decode pass, streamed into memory (``in_memory``) and into the entry at ``path`` (if any)."""
    count = len(listing.candidates)
    c, (h, w) = settings.channels, settings.size
    start = time.perf_counter()
    keep = np.empty((count, c, h, w), dtype=np.uint8) if in_memory else None
    workers = processes if processes > 1 else 1
    progress = CountProgress(count, f"decoding {listing.root.name or listing.root}", enabled=show_progress)
    taker = _Pass(listing, keep, strict, progress)

    def said(message: str) -> None:
        progress.clear()
        say(message)

    sink = _EntrySink(path, (c, h, w), said)
    refs = [ref for _, _, ref in listing.candidates]
    chunks: Iterator[DecodedChunk] = decode_chunks(refs, c, (h, w), settings.center_crop, processes)
    try:
        for chunk in chunks:
            taker.take(chunk)
            sink.write(chunk.images)
    except BaseException as err:
        sink.abort(err)
        raise
    finally:
        chunks.close()
    written = sink.commit(key, settings, count, taker.unreadable) if key is not None else False
    seconds = time.perf_counter() - start
    bad = f", {len(taker.unreadable)} unreadable" if taker.unreadable else ""
    where = f"; cached in {path}" if written else ""
    plural = "es" if workers > 1 else ""
    progress.clear()
    say(f"decoded {taker.rows} images{bad} in {seconds:.1f} s with {workers} process{plural}{where}")
    reasons = _reasons(count, taker.unreadable)
    status = "built" if written else "uncached"
    if keep is not None:
        return DecodedFolder(keep[: taker.rows], reasons, status, False, path if written else None)
    if written:  # too large for memory: read back memory-mapped (no CRC pass: just written)
        shape = (taker.rows, c, h, w)
        if taker.rows:
            images = np.memmap(path, dtype=np.uint8, mode="c", offset=decode_cache.DATA_OFFSET, shape=shape)
        else:
            images = np.empty(shape, np.uint8)
        return DecodedFolder(images, reasons, status, True, path)
    say(
        f"data cache: {count} images of {c}×{h}×{w} exceed the memory budget and cannot be cached; "
        "they are decoded from the files every epoch"
    )
    return DecodedFolder(None, reasons, status)


# ----------------------------------------------------------------------------------------------
# rows of a split


def _contiguous(rows: np.ndarray) -> bool:
    return len(rows) == 0 or (rows[-1] - rows[0] + 1 == len(rows) and bool(np.all(np.diff(rows) == 1)))


def split_pixels(
    decoded: DecodedFolder, splits_rows: list[np.ndarray], cache_dir: Path | None
) -> list[np.ndarray | None]:
    """The pixels of each split, given its rows (ascending indices into ``decoded.images``; the splits
    together hold every row once).

    In memory, the rows are permuted in place so that the splits follow one another, and each split is a
    view: no second copy of the data set, whatever the hold-outs. Memory-mapped, a split whose rows are
    one contiguous range (a ``train/``, ``val/`` or ``test/`` folder) is a view of the entry, and a
    carved-out one a memory-mapped copy kept in the cache beside the entry; None when that copy cannot
    be written (the caller then decodes that split from its files).
    """
    images = decoded.images
    if decoded.memory_mapped:
        out: list[np.ndarray | None] = []
        for rows in splits_rows:
            if _contiguous(rows):
                out.append(images[rows[0] : rows[-1] + 1] if len(rows) else images[:0])
            else:
                out.append(_subset_entry(decoded, rows, cache_dir))
        return out
    order = np.concatenate(splits_rows) if splits_rows else np.zeros(0, np.int64)
    if len(order) != len(images) or not np.array_equal(np.sort(order), np.arange(len(images))):
        raise ValueError("the splits must hold every decoded row exactly once")
    permute_rows(images, order)
    bounds = np.cumsum([0] + [len(rows) for rows in splits_rows])
    return [images[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def permute_rows(array: np.ndarray, order: np.ndarray) -> None:
    """``array[:] = array[order]`` in place, one row of scratch memory instead of a second array:
    each cycle of the permutation is followed once."""
    done = order == np.arange(len(order))
    scratch = np.empty_like(array[:1])
    for start in np.flatnonzero(~done).tolist():
        if done[start]:
            continue
        scratch[0] = array[start]
        position = start
        while True:
            source = int(order[position])
            done[position] = True
            if source == start:
                array[position] = scratch[0]
                break
            array[position] = array[source]
            position = source


def _subset_entry(decoded: DecodedFolder, rows: np.ndarray, cache_dir: Path | None) -> np.ndarray | None:
    import hashlib

    assert decoded.path is not None
    digest = hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()
    path = decoded.path.with_name(
        f"{decoded.path.name[: -len(decode_cache.SUFFIX)]}-{digest[:16]}{decode_cache.SUFFIX}"
    )
    shape = decoded.images.shape[1:]
    settings = DecodeSettings(int(shape[0]), (int(shape[1]), int(shape[2])), False)
    key = f"subset {decoded.path.name} {digest}"
    try:
        entry: CacheEntry | None = decode_cache.read_entry(path, key, settings, len(rows), in_memory=False)
    except (StaleEntry, OSError):
        entry = None
    if entry is not None:
        return entry.images
    try:
        with decode_cache.writing_entry(path, shape) as writer:
            step = max(1, (64 * 2**20) // max(1, math.prod(shape)))
            for start in range(0, len(rows), step):
                writer.write(decoded.images[rows[start : start + step]])
            writer.finish(key, settings, len(rows), [])
    except OSError:
        return None
    return np.memmap(
        path, dtype=np.uint8, mode="c", offset=decode_cache.DATA_OFFSET, shape=(len(rows), *shape)
    )
