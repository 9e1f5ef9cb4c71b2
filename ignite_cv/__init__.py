"""ignite_cv: image-classification training on PyTorch Ignite.

Data flows one way: source → uint8 batches → device → batch pipeline (augment, normalize)
→ model → loss/metrics → handlers → run folder. See docs/architecture.md for the module map.

``from ignite_cv import load_model, predict`` uses a trained checkpoint (``ignite_cv.inference.api``);
both are imported on first use, so ``import ignite_cv`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model", "predict"]

_LAZY = {"load_model": "ignite_cv.inference.api", "predict": "ignite_cv.inference.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ignite_cv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
