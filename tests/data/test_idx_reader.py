"""The IDX reader: plain and gzip files, dtypes, and one-line errors for damaged files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from ignite_cv.data.idx import read_idx
from ignite_cv.utils.errors import UserError


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    dtype = {0x08: ">u1", 0x0B: ">i2"}[type_code]
    return header + array.astype(dtype).tobytes()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_plain_and_gzip(tmp_path, images, compress):
    data = idx_bytes(images)
    path = tmp_path / ("images.idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    tensor = read_idx(path, ndim=3)
    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == (5, 4, 3)
    assert np.array_equal(tensor.numpy(), images)


def test_big_endian_int16(tmp_path):
    values = np.array([-2, 300, 7], dtype=np.int16)
    path = tmp_path / "v.idx1"
    path.write_bytes(idx_bytes(values, type_code=0x0B))
    assert read_idx(path).tolist() == [-2, 300, 7]


def test_bad_magic(tmp_path, images):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34" + idx_bytes(images)[2:])
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:9], "truncated"),
    ],
)
def test_size_mismatch(tmp_path, images, mangle, message):
    path = tmp_path / "x.idx"
    path.write_bytes(mangle(idx_bytes(images)))
    with pytest.raises(UserError, match=message):
        read_idx(path)


def test_wrong_ndim_and_damaged_gzip(tmp_path, images):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(images))
    with pytest.raises(UserError, match="3 dimensions where 1"):
        read_idx(path, ndim=1)
    damaged = tmp_path / "x.idx.gz"
    damaged.write_bytes(gzip.compress(idx_bytes(images))[:30])
    with pytest.raises(UserError, match="gzip"):
        read_idx(damaged)
    with pytest.raises(UserError, match="cannot read"):
        read_idx(tmp_path / "missing.idx")
