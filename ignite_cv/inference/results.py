"""What a prediction returns: one :class:`Prediction` per readable image, and the images left out.

Probabilities are float32 as the model computed them (:attr:`PredictionSet.probabilities`); the
per-image dictionaries hold the same values as Python floats (exact: every float32 is a float).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ignite_cv.inference.decision import DecisionRule
from ignite_cv.inference.inputs import LeftOut


@dataclass(frozen=True)
class Prediction:
    """The prediction for one image.

    ``source``: the path as given (``FOLDER/file.jpg``, ``ARCHIVE.zip::member``) or ``<image i>``
    for in-memory images; ``position``: its place among the images collected from the inputs
    (non-image files left out of folders do not count, unreadable images do);
    ``label``/``label_index``: the predicted class (the decision rule's: see ``PredictionSet.rule``);
    ``probabilities``: every class's probability, in the model's class order.
    """

    source: str
    position: int
    label: str
    label_index: int
    probabilities: dict[str, float]

    @property
    def probability(self) -> float:
        """The probability of the predicted class."""
        return self.probabilities[self.label]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first (ties in class order)."""
        ranked = sorted(self.probabilities.items(), key=lambda item: -item[1])
        return ranked[: max(0, k)]


@dataclass
class PredictionSet:
    """Predictions in input order (``for p in result``, ``result[i]``, ``len(result)``) and the left-out
    inputs (``result.skipped``: unreadable images and non-image files, each with its reason)."""

    class_names: list[str]
    rule: DecisionRule
    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[LeftOut] = field(default_factory=list)
    probabilities: torch.Tensor = field(default_factory=lambda: torch.empty(0, 0))

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.predictions)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, index: int) -> Prediction:
        return self.predictions[index]

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.predictions]

    @property
    def sources(self) -> list[str]:
        return [p.source for p in self.predictions]

    def __repr__(self) -> str:
        return (
            f"PredictionSet({len(self.predictions)} predictions, {len(self.skipped)} skipped, "
            f"classes {self.class_names})"
        )


def build_predictions(
    sources: list[str],
    positions: list[int],
    probabilities: torch.Tensor,
    class_names: list[str],
    rule: DecisionRule,
    skipped: list[LeftOut],
) -> PredictionSet:
    """Assemble the result from float32 ``(N, C)`` CPU probabilities in the order of ``sources``."""
    probabilities = probabilities.to("cpu", torch.float32)
    labels = rule.decide(probabilities).tolist()
    rows = probabilities.tolist()
    predictions = [
        Prediction(source, position, class_names[label], label, dict(zip(class_names, row)))
        for source, position, label, row in zip(sources, positions, labels, rows)
    ]
    return PredictionSet(list(class_names), rule, predictions, list(skipped), probabilities)
