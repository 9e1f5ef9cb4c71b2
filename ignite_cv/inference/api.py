"""The Python API: ``from ignite_cv import load_model, predict``.

    model = load_model("runs/RUN/checkpoints/best_epoch=9_accuracy=0.9812.safetensors")
    result = predict(model, ["photo.jpg", "more_photos/", pil_image, uint8_array])
    for p in result:
        print(p.source, p.label, round(p.probability, 3))
    print(result.skipped)  # unreadable files, with the reason

``predict`` also takes the checkpoint's path itself (loaded on each call: load once for many calls)
or the ``(model, card)`` pair of :func:`ignite_cv.weights.load_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ignite_cv.inference.loading import load_predictor
from ignite_cv.inference.predictor import DEFAULT_BATCH_SIZE, Predictor
from ignite_cv.inference.results import PredictionSet
from ignite_cv.utils.errors import UserError


def load_model(path: str | Path, device: str = "auto", amp: str = "none") -> Predictor:
    """A checkpoint's model ready to predict (``device``: auto, cpu, cuda, cuda:N; nothing is unpickled)."""
    return load_predictor(path, device=device, amp=amp)


def predict(
    model_or_path: Predictor | str | Path | tuple,
    images: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 0,
    strict: bool = False,
    device: str = "auto",
) -> PredictionSet:
    """Class names and probabilities for ``images``: paths (image files, folders searched recursively,
    zips), PIL images, uint8 numpy arrays (HWC) or tensors (CHW), one or a list of them.

    Each image is preprocessed as the model's card says (channels, size, crop, normalization). The
    result iterates over :class:`~ignite_cv.inference.results.Prediction` in input order (folders
    sorted); unreadable inputs are in ``result.skipped`` (``strict=True`` raises instead).
    ``workers`` processes decode files in parallel; ``device`` is used when a path is given.
    """
    return as_predictor(model_or_path, device).predict(
        images, batch_size=batch_size, workers=workers, strict=strict
    )


def as_predictor(model_or_path: Any, device: str = "auto") -> Predictor:
    if isinstance(model_or_path, Predictor):
        return model_or_path
    if isinstance(model_or_path, (str, Path)):
        return load_predictor(model_or_path, device=device)
    if isinstance(model_or_path, tuple) and len(model_or_path) == 2:
        model, card = model_or_path
        device_of = next((p.device for p in model.parameters()), "cpu")
        return Predictor(model, card, device_of)
    raise UserError(
        f"predict() got a {type(model_or_path).__name__} as the model",
        "pass load_model(path), a checkpoint path, or the (model, card) of ignite_cv.weights.load_model",
    )
