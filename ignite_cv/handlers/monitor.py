"""Which validation metric decides "best", and in which direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from ignite.engine import Engine

from ignite_cv.metrics import LOWER_IS_BETTER, MONITORABLE_METRICS
from ignite_cv.utils.errors import UserError


@dataclass(frozen=True)
class Monitor:
    """A validation metric name and ``mode`` ("max" or "min"); ``score`` is always higher-is-better."""

    metric: str
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")

    @classmethod
    def resolve(cls, metric: str, mode: str, binary: bool) -> Monitor:
        """``auto`` picks roc_auc for two classes and accuracy otherwise; the mode follows the metric."""
        if metric == "auto":
            metric = "roc_auc" if binary else "accuracy"
        if mode == "auto":
            mode = "min" if metric in LOWER_IS_BETTER else "max"
        return cls(metric, mode)

    @staticmethod
    def check_name(metric: str) -> None:
        """Refuse a ``--monitor`` no evaluation computes (before any work; then :meth:`check_available`)."""
        if metric != "auto" and metric not in MONITORABLE_METRICS:
            raise UserError(
                f"--monitor {metric!r} is not a validation metric",
                f"use auto or one of: {', '.join(MONITORABLE_METRICS)}",
            )

    def check_available(self, computed) -> None:
        """Refuse a metric this task's evaluation does not compute (``top5`` needs more than 10 classes)."""
        if self.metric not in computed:
            raise UserError(
                f"--monitor {self.metric!r} is not computed for this data set "
                "(top5 is reported for more than 10 classes)",
                f"use auto or one of: {', '.join(m for m in MONITORABLE_METRICS if m in computed)}",
            )

    def value(self, engine: Engine) -> float:
        try:
            value = engine.state.metrics[self.metric]
        except KeyError:
            names = ", ".join(sorted(engine.state.metrics))
            raise UserError(
                f"--monitor {self.metric!r} is not a validation metric", f"use one of: {names}"
            ) from None
        value = value.item() if isinstance(value, torch.Tensor) else float(value)
        return value

    def score(self, engine: Engine) -> float:
        """Higher is better; NaN counts as the worst score."""
        value = self.value(engine)
        if math.isnan(value):
            return -math.inf
        return value if self.mode == "max" else -value
