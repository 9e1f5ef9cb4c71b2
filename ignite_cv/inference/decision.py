"""The predicted class: argmax of the class probabilities, or a stored threshold for two classes.

Contract with whoever stores a decision threshold in a checkpoint (the card's free-form ``extra``):

* ``card.extra["threshold"]``: a number in (0, 1), the probability of the positive class at and
  above which an image is called positive. Absent: 0.5.
* ``card.extra["positive_class"]``: the positive class, as its name (a string in
  ``card.class_names``) or its index (an int). Absent: index 1 (the single logit of a two-class
  model is the evidence for class 1, see :mod:`ignite_cv.task`).

Both are read only for two-class models; a multi-class model always takes the argmax, and a
threshold stored on one is ignored (reported as such by :meth:`DecisionRule.describe`). With the
defaults the decision is the argmax except on an exact tie (probability 0.5, logit 0), which counts
as positive here (``>=``) and as class 0 for the argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ignite_cv.utils.errors import UserError

THRESHOLD_KEY = "threshold"
POSITIVE_CLASS_KEY = "positive_class"
DEFAULT_THRESHOLD = 0.5
DEFAULT_POSITIVE_INDEX = 1


@dataclass(frozen=True)
class DecisionRule:
    """How ``(N, C)`` class probabilities become class indices."""

    class_names: tuple[str, ...]
    threshold: float | None = None  # None: argmax (multi-class)
    positive_index: int | None = None
    stored: bool = False  # the threshold or positive class came from the card

    @classmethod
    def from_card(cls, card: Any) -> DecisionRule:
        names = tuple(str(n) for n in card.class_names)
        extra = card.extra or {}
        if len(names) != 2:
            return cls(names)
        threshold = extra.get(THRESHOLD_KEY, DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise UserError(f"the checkpoint's stored threshold {threshold!r} is not a number", _REFIX)
        threshold = float(threshold)
        if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
            raise UserError(f"the checkpoint's stored threshold {threshold} is not in (0, 1)", _REFIX)
        positive = extra.get(POSITIVE_CLASS_KEY, DEFAULT_POSITIVE_INDEX)
        if isinstance(positive, str):
            if positive not in names:
                raise UserError(
                    f"the checkpoint's positive class {positive!r} is not one of its classes {list(names)}",
                    _REFIX,
                )
            index = names.index(positive)
        elif isinstance(positive, int) and not isinstance(positive, bool) and positive in (0, 1):
            index = positive
        else:
            raise UserError(
                f"the checkpoint's positive class {positive!r} is not 0, 1 or a class name", _REFIX
            )
        stored = THRESHOLD_KEY in extra or POSITIVE_CLASS_KEY in extra
        return cls(names, threshold, index, stored)

    @property
    def binary(self) -> bool:
        return self.threshold is not None

    @property
    def positive_class(self) -> str | None:
        return None if self.positive_index is None else self.class_names[self.positive_index]

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        """int64 ``(N,)`` class indices for float ``(N, C)`` probabilities."""
        if not self.binary:
            return probabilities.argmax(dim=1)
        positive = probabilities[:, self.positive_index] >= self.threshold
        negative_index = 1 - self.positive_index
        return torch.where(positive, self.positive_index, negative_index).to(torch.int64)

    def describe(self) -> str:
        if not self.binary:
            return "argmax of the class probabilities"
        where = "stored in the checkpoint" if self.stored else "default"
        return f"{self.positive_class} if P({self.positive_class}) >= {self.threshold:g} ({where})"


_REFIX = "re-save the checkpoint with a threshold in (0, 1) and a positive class among its class names"
