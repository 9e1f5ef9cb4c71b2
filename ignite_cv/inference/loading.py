"""What a MODEL path names: a checkpoint's :class:`~ignite_cv.inference.predictor.Predictor`, or an
ensemble manifest's (``.json``, :func:`ignite_cv.ensemble.load_ensemble`).

Its own module because the ensemble's predictor subclasses ``Predictor``: the module that defines
``Predictor`` cannot import the ensemble without an import cycle; this one sits above both.
"""

from __future__ import annotations

from pathlib import Path

from ignite_cv.inference.predictor import Predictor


def load_predictor(
    path: str | Path, device: str = "auto", amp: str = "none", max_pixels: int | None = None
) -> Predictor:
    """A checkpoint's predictor, or an ensemble manifest's (``.json``; every member's SHA-256 checked)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        from ignite_cv.ensemble import load_ensemble

        return load_ensemble(path, device=device, amp=amp, max_pixels=max_pixels)
    return Predictor.from_checkpoint(path, device, amp, max_pixels)
