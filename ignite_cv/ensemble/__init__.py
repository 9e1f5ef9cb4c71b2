"""Ensembles of saved models: the mean (optionally weighted) of their class probabilities.

* :mod:`~ignite_cv.ensemble.manifest`: the ensemble manifest, a small JSON naming the checkpoints with
  their SHA-256 and weights and the shared class names; a checkpoint whose hash changed is refused.
* :mod:`~ignite_cv.ensemble.evaluate`: evaluate an ensemble on a data split (``tools/ensemble.py``,
  ``tools/evaluate.py ensemble.json``): each member reads the split with its own preprocessing, the
  report is ``tools/evaluate.py``'s.
* :mod:`~ignite_cv.ensemble.predictor`: :func:`load_ensemble`, the predictor of a manifest, which
  ``ignite_cv.inference`` loads for a ``.json`` model (``tools/predict.py``, the API, the app).
"""

from __future__ import annotations


def load_ensemble(path, device: str = "auto", amp: str = "none", max_pixels: int | None = None):
    """The :class:`~ignite_cv.inference.predictor.Predictor` of the ensemble manifest at ``path``."""
    from ignite_cv.ensemble.predictor import load_ensemble as load

    return load(path, device=device, amp=amp, max_pixels=max_pixels)


__all__ = ["load_ensemble"]
