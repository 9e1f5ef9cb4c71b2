"""Class activation map overlays for predictions: the seam to ``ignite_cv.explain``.

The explanation package is built separately. Prediction (``tools/predict.py --cam METHOD
--cam-dir DIR``, the web app) needs one function from it::

    ignite_cv.explain.cam_overlays(model, pipeline, images, targets, method) -> torch.Tensor

``images``: uint8 ``(N, C, H, W)`` model-sized inputs on the model's device; ``pipeline``: the
:class:`~ignite_cv.pipeline.batch_pipeline.BatchPipeline` that turns them into the model's input;
``targets``: int64 ``(N,)`` class indices to explain (the predicted classes); ``method``: a CAM
method name (the explain package validates it, raising ``UserError`` for unknown ones). Returns
uint8 ``(N, 3, H, W)`` overlays (the map blended over the image), on any device.

Until that package exists, :func:`require_explain` raises a one-line ``UserError``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ignite_cv.utils.atomic import atomic_path
from ignite_cv.utils.errors import UserError

EXPLAIN_MODULE = "ignite_cv.explain"
OVERLAY_FUNCTION = "cam_overlays"


def require_explain() -> Any:
    """The explain module's ``cam_overlays``, or a UserError saying it is missing."""
    try:
        module = importlib.import_module(EXPLAIN_MODULE)
    except ImportError:
        raise UserError(
            "--cam needs the explain package (ignite_cv.explain), which this ignite_cv does not have yet",
            "drop --cam, or update ignite_cv",
        ) from None
    function = getattr(module, OVERLAY_FUNCTION, None)
    if function is None:
        raise UserError(
            f"{EXPLAIN_MODULE} has no {OVERLAY_FUNCTION}() for prediction overlays", "update ignite_cv"
        )
    return function


def explain_available() -> bool:
    try:
        require_explain()
    except UserError:
        return False
    return True


def overlays(predictor: Any, images: torch.Tensor, targets: torch.Tensor, method: str) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` CPU overlays of model-sized uint8 ``images`` for ``targets``."""
    cam_overlays = require_explain()
    with torch.enable_grad():
        out = cam_overlays(
            predictor.model,
            predictor.pipeline,
            images.to(predictor.device),
            targets.to(predictor.device),
            method,
        )
    if out.dtype != torch.uint8 or out.ndim != 4 or out.shape[1] != 3:
        raise RuntimeError(
            f"{OVERLAY_FUNCTION} returned {tuple(out.shape)} {out.dtype}, not uint8 (N, 3, H, W)"
        )
    return out.cpu()


def overlay_image(overlay: torch.Tensor) -> Image.Image:
    return Image.fromarray(overlay.permute(1, 2, 0).contiguous().numpy())


def cam_file_name(source: str) -> str:
    """A flat, safe PNG name for an input's overlay: ``photos/a b.jpg`` → ``photos_a_b.jpg.png``."""
    flat = re.sub(r"[^A-Za-z0-9._-]+", "_", source.replace("::", "/")).strip("._") or "image"
    return f"{flat[-180:]}.png"


class CamWriter:
    """A ``Predictor.predict(on_batch=...)`` hook: one overlay PNG per image, for its predicted class.

    Files go into ``out_dir`` as :func:`cam_file_name` of the source, each written atomically; the
    explain package is checked when the writer is made, before any image is read.
    """

    def __init__(self, predictor: Any, method: str, out_dir: str | Path) -> None:
        require_explain()
        self.predictor = predictor
        self.method = method
        self.out_dir = Path(out_dir)
        self.written: list[Path] = []

    def __call__(self, images: torch.Tensor, probabilities: torch.Tensor, sources: list[str]) -> None:
        targets = self.predictor.rule.decide(probabilities.float().cpu())
        for source, overlay in zip(sources, overlays(self.predictor, images, targets, self.method)):
            path = self.out_dir / cam_file_name(source)
            with atomic_path(path) as tmp:
                overlay_image(overlay).save(tmp, format="PNG")
            self.written.append(path)
