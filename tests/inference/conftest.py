"""Fixtures for the inference tests: tiny checkpoints with a chosen card, and image files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.models import build_model
from ignite_cv.weights import ModelCard, save_model

MEANSTD = {"kind": "meanstd", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}


def make_checkpoint(
    path: Path,
    channels: int = 3,
    size: tuple[int, int] = (8, 8),
    classes: tuple[str, ...] = ("cat", "dog"),
    extra: dict | None = None,
    normalization: dict | None = None,
    seed: int = 0,
) -> Path:
    """A TinyVGG (2 hidden units, random weights) saved as an ignite_cv checkpoint."""
    torch.manual_seed(seed)
    outputs = 1 if len(classes) == 2 else len(classes)
    model = build_model("tinyvgg", channels, size, outputs, hidden_units=2)
    if normalization is None:
        normalization = {
            "kind": "meanstd",
            "mean": MEANSTD["mean"][:channels],
            "std": MEANSTD["std"][:channels],
        }
    card = ModelCard(
        arch="tinyvgg",
        arch_args={"hidden_units": 2},
        class_names=list(classes),
        in_channels=channels,
        image_size=list(size),
        num_outputs=outputs,
        normalization=normalization,
        extra=dict(extra or {}),
    )
    save_model(path, model, card)
    return path


def random_image(seed: int, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> Image.Image:
    """A random image of ``size`` = (width, height) pixels."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` × ``height`` 1-bit pixels but holds almost no data: Pillow's
    decompression-bomb guard judges it by its header, so a 20,000 × 20,000 image costs 60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


@pytest.fixture
def rgb_checkpoint(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "rgb.safetensors")
