"""One pass over image files: each is opened once and decoded at the target size and channels, in worker
processes.

The same pass finds the unreadable files and yields the pixels, so a folder is never decoded twice (once to
validate it, once to train on it). Processes, not threads: Pillow releases the GIL inside its codecs but
not in the Python around them (mode conversion, alpha compositing, array copies), which caps threads well
below the number of cores. Files go out in chunks of :data:`CHUNK_FILES` and come back in order, with at
most :data:`CHUNKS_IN_FLIGHT` chunks per process outstanding: memory stays bounded, and the first
unreadable file in path order is the first one the caller sees (``--strict-data`` stops there).

Worker processes import only this module, :mod:`ignite_cv.data.folder`, NumPy and Pillow (never torch).
They are forked on Linux while the caller has no other threads (instant), else started by the
``forkserver`` or ``spawn`` method.
"""

from __future__ import annotations

import collections
import multiprocessing
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ignite_cv.data.folder import decode_or_reason
from ignite_cv.utils.errors import UserError

#: Files per task sent to a worker process (about 1 MB of pixels at 3×64×64, 10 MB at 3×224×224).
CHUNK_FILES = 64
#: Chunks per worker process submitted ahead of the one being consumed.
CHUNKS_IN_FLIGHT = 3
#: Fewer files than this are decoded in the calling process (starting workers would cost more).
POOL_MIN_FILES = 64


@dataclass
class DecodedChunk:
    """Consecutive files ``refs[start : start + count]`` decoded: the readable ones' pixels, in order,
    and the others' reasons."""

    start: int
    count: int
    images: np.ndarray  # uint8 (k, C, H, W), k = count - len(unreadable)
    unreadable: list[tuple[int, str]]  # (index into refs, reason), ascending


def decode_chunk(
    start: int, refs: Sequence[str], channels: int, size: tuple[int, int], center_crop: bool
) -> DecodedChunk:
    """Decode ``refs`` (files ``start ...`` of the pass) one after the other; runs in a worker process."""
    height, width = size
    out = np.empty((len(refs), channels, height, width), dtype=np.uint8)
    kept, unreadable = 0, []
    for offset, ref in enumerate(refs):
        result = decode_or_reason(ref, channels, size, center_crop)
        if isinstance(result, str):
            unreadable.append((start + offset, result))
        else:
            out[kept] = result
            kept += 1
    images = out if kept == len(refs) else out[:kept].copy()
    return DecodedChunk(start, len(refs), images, unreadable)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def decode_chunks(
    refs: Sequence[str],
    channels: int,
    size: tuple[int, int],
    center_crop: bool = False,
    processes: int = 0,
    chunk_files: int = CHUNK_FILES,
) -> Iterator[DecodedChunk]:
    """Decode every file of ``refs`` to uint8 ``(channels, *size)``, yielding :class:`DecodedChunk` s in
    order. ``processes`` <= 1 (or a short list, or a daemonic caller, which may not have children)
    decodes in this process. Closing the iterator early cancels the chunks not yet started.

    Raises:
        UserError: a worker process died (out of memory, or a crash in an image library).
    """
    bounds = [(start, refs[start : start + chunk_files]) for start in range(0, len(refs), chunk_files)]
    sequential = processes <= 1 or len(refs) < POOL_MIN_FILES or multiprocessing.current_process().daemon
    if sequential:
        for start, part in bounds:
            yield decode_chunk(start, part, channels, size, center_crop)
        return
    pool = ProcessPoolExecutor(max_workers=min(processes, len(bounds)), mp_context=_context())
    pending: collections.deque[Future] = collections.deque()
    todo = iter(bounds)
    try:
        for start, part in todo:
            pending.append(pool.submit(decode_chunk, start, part, channels, size, center_crop))
            if len(pending) >= processes * CHUNKS_IN_FLIGHT:
                break
        while pending:
            chunk = pending.popleft().result()
            for start, part in todo:
                pending.append(pool.submit(decode_chunk, start, part, channels, size, center_crop))
                break
            yield chunk
    except BrokenProcessPool:
        raise UserError(
            "an image-decoding process died (out of memory, or a crash in an image library)",
            "free memory and retry, or pass --workers 0 to decode in the main process",
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
