"""A reader for IDX files, the format of MNIST and Fashion-MNIST (plain or gzip-compressed).

Layout (all integers big-endian): two zero bytes, a type code, the number of dimensions ``d``,
then ``d`` unsigned 32-bit sizes, then the values in C order. MNIST's images use type 0x08 (uint8)
and 3 dimensions (magic 0x00000803 = 2051), its labels 0x08 and 1 dimension (magic 2049).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from ignite_cv.utils.errors import UserError

#: type code → big-endian numpy dtype
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path, ndim: int | None = None) -> torch.Tensor:
    """Read an IDX file into a tensor of its own shape and dtype (uint8 for MNIST files).

    Gzip compression is recognised by the file's first bytes, not its name. ``ndim``, when
    given, is the number of dimensions the caller expects (3 for images, 1 for labels).

    Raises:
        UserError: the file cannot be read, is not IDX (bad magic number), is truncated or has
            trailing bytes, or has the wrong number of dimensions.
    """
    path = Path(path)
    fix = "replace it with an intact copy (e.g. download it again)"
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except OSError as err:  # includes gzip.BadGzipFile
        raise UserError(f"cannot read IDX file {path} ({err})", fix) from None
    except (EOFError, zlib.error) as err:
        raise UserError(f"IDX file {path} is a damaged gzip file ({err or 'truncated'})", fix) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        magic = raw[:4].hex() or "empty file"
        raise UserError(f"{path} is not an IDX file (magic number 0x{magic})", fix)
    dtype = _DTYPES[raw[2]]
    dims = raw[3]
    if ndim is not None and dims != ndim:
        raise UserError(
            f"IDX file {path} has {dims} dimensions where {ndim} were expected", "check the file name"
        )
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UserError(f"IDX file {path} is truncated (incomplete header)", fix)
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        what = "is truncated" if actual < expected else "has trailing bytes"
        raise UserError(
            f"IDX file {path} {what}: {actual} data bytes for shape {shape} ({expected} expected)", fix
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))
