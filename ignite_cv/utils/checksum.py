"""Checksums of tensor files: detect a damaged (truncated, bit-flipped, edited) checkpoint or state.

Both files ignite_cv writes in safetensors (model checkpoints, :mod:`ignite_cv.weights`, and training
states, :mod:`ignite_cv.training_state`) store, in their metadata, a checksum over every tensor's name,
dtype, shape and bytes and over the JSON metadata beside them; every load recomputes it. safetensors
itself checks only that the header and the byte ranges fit together, so a flipped bit in a weight, or a
metadata entry edited by hand, reads without complaint otherwise.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import torch


class Crc32:
    """``zlib.crc32`` behind hashlib's ``update``/``hexdigest``."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


#: Checksum algorithms by metadata key; new files use the first. CRC-32 is what zip, gzip and PNG use
#: to detect damage, and 5× faster than BLAKE2b here (1.4 vs 7.1 ms on an 8.6 MB state), which
#: matters to the write at the end of each epoch; files written with BLAKE2b still verify.
CHECKSUMS: dict[str, Callable[[], Any]] = {
    "crc32": Crc32,
    "blake2b": lambda: hashlib.blake2b(digest_size=16),
}
CHECKSUM_KEY = next(iter(CHECKSUMS))


def tensors_checksum(tensors: Mapping[str, torch.Tensor], text: str, algorithm: str = CHECKSUM_KEY) -> str:
    """A checksum over names, dtypes, shapes and bytes of ``tensors`` (CPU) and over ``text``."""
    digest = CHECKSUMS[algorithm]()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no copy
    digest.update(text.encode())
    return digest.hexdigest()


def checksum_algorithm(metadata: Mapping[str, str]) -> str | None:
    """The checksum key a file's metadata holds (None for a file written without one)."""
    return next((key for key in CHECKSUMS if key in metadata), None)


def verify_checksum(
    tensors: Mapping[str, torch.Tensor], text: str, metadata: Mapping[str, str]
) -> bool | None:
    """True if the stored checksum matches, False if it does not, None if the file holds none."""
    algorithm = checksum_algorithm(metadata)
    if algorithm is None:
        return None
    return tensors_checksum(tensors, text, algorithm) == metadata[algorithm]
