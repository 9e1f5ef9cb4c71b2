"""Card-driven preprocessing: an image becomes exactly the uint8 input the model was trained on.

Everything comes from the checkpoint's :class:`~ignite_cv.weights.ModelCard` and is applied with the
same functions training used (:mod:`ignite_cv.data.folder`), so a file predicted here is decoded,
converted and resized bit for bit as the training loader would have done it:

* channels: ``card.in_channels`` — an RGB image given to a grey model is converted with ITU-R 601
  luma, a grey image given to an RGB model is repeated over three channels; alpha is composited on
  black; 16-bit grey is scaled to 8 bits (see :mod:`ignite_cv.data.folder`).
* size: ``card.image_size`` (height, width) — any other size is resized (antialiased bilinear).
* centre crop: ``card.extra["center_crop"]`` when the card records it, else the run's
  ``config.json`` ``center_crop`` when the checkpoint sits in ``<run>/checkpoints/``, else False
  (stretch to the size). Cards written before this key existed do not record it.
* normalization is not applied here: it runs on the device in the batch pipeline
  (:func:`ignite_cv.pipeline.normalize.build_normalizer` of ``card.normalization``).

The pixel limit is Pillow's decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 M pixels by
default; Pillow refuses images above twice that and warns between): images it refuses become an
"unreadable" reason, never a crash. ``max_pixels`` sets a stricter limit (the web app uses Pillow's
limit itself, so an upload that would only warn is refused). Files above
:data:`ignite_cv.data.folder.MAX_FILE_BYTES` are refused before they are read.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ignite_cv.data.folder import (
    UnreadableImage,
    image_to_tensor,
    open_image,
    read_bytes,
    resize,
    to_channels,
)


@dataclass(frozen=True)
class Preprocessing:
    """How one image becomes a uint8 ``(channels, height, width)`` tensor; sizes in pixels."""

    channels: int
    size: tuple[int, int]
    center_crop: bool = False
    max_pixels: int | None = None

    @classmethod
    def from_card(cls, card: Any, run_config: dict | None = None, max_pixels: int | None = None):
        """The preprocessing a checkpoint's card (and, for the crop, its run's config) describes."""
        if "center_crop" in card.extra:
            crop = bool(card.extra["center_crop"])
        else:
            crop = bool((run_config or {}).get("center_crop", False))
        height, width = (int(v) for v in card.image_size)
        return cls(int(card.in_channels), (height, width), crop, max_pixels)

    def describe(self) -> str:
        kind = {1: "grey", 3: "RGB"}.get(self.channels, f"{self.channels}-channel")
        how = "centre crop" if self.center_crop else "resized"
        return f"{kind} {self.size[0]}×{self.size[1]} ({how})"

    def decode_file(self, ref: str) -> torch.Tensor:
        """A file path or ``zip://`` reference → uint8 tensor. Raises :class:`UnreadableImage`."""
        return self.tensor(self.open_file(ref))

    def open_file(self, ref: str) -> Image.Image:
        """A file's first frame, decoded and converted to the model's channels (not resized)."""
        data = read_bytes(ref)
        if self.max_pixels is not None:
            self._check_pixels(data)
        return self.convert(open_image(data))  # not closed: convert may return the same image

    def convert(self, img: Image.Image) -> Image.Image:
        """The model's channels (grey or RGB). Raises :class:`UnreadableImage`."""
        if self.max_pixels is not None and img.width * img.height > self.max_pixels:
            raise UnreadableImage(self._too_many(img.width, img.height))
        try:
            return to_channels(img, self.channels)
        except UnreadableImage:
            raise
        except Exception as err:  # a conversion Pillow cannot do
            raise UnreadableImage(f"cannot convert the image ({type(err).__name__}: {err})") from None

    def tensor(self, converted: Image.Image) -> torch.Tensor:
        """A converted image resized (or centre-cropped) to the model's size, as uint8 ``(C, H, W)``."""
        return image_to_tensor(resize(converted, self.size, self.center_crop))

    def image(self, img: Image.Image) -> torch.Tensor:
        """An in-memory image → uint8 tensor (convert, then resize). Raises :class:`UnreadableImage`."""
        return self.tensor(self.convert(img))

    def _check_pixels(self, data: bytes) -> None:
        try:
            with warnings.catch_warnings():  # Pillow's own warning: this limit refuses it just below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:  # reads the header only
                    width, height = img.size
        except Exception:
            return  # open_image reports what is wrong with it
        if width * height > self.max_pixels:
            raise UnreadableImage(self._too_many(width, height))

    def _too_many(self, width: int, height: int) -> str:
        return f"too many pixels ({width}×{height} = {width * height}, the limit is {self.max_pixels})"
