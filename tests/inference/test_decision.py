"""The decision rule: argmax for many classes; the card's threshold and positive class for two."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.inference.decision import DecisionRule
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import ModelCard


def _card(classes=("neg", "pos"), extra=None) -> ModelCard:
    return ModelCard("tinyvgg", {}, list(classes), 1, [8, 8], 1, {"kind": "none"}, dict(extra or {}))


PROBS = torch.tensor([[0.9, 0.1], [0.45, 0.55], [0.3, 0.7], [0.5, 0.5]])


def test_the_default_is_class_1_at_one_half():
    rule = DecisionRule.from_card(_card())
    assert (rule.threshold, rule.positive_class, rule.stored) == (0.5, "pos", False)
    assert rule.decide(PROBS).tolist() == [0, 1, 1, 1]  # a tie (0.5) is positive
    assert rule.describe() == "pos if P(pos) >= 0.5 (default)"


def test_a_stored_threshold_flips_decisions():
    rule = DecisionRule.from_card(_card(extra={"threshold": 0.6}))
    assert rule.decide(PROBS).tolist() == [0, 0, 1, 0]
    assert rule.describe() == "pos if P(pos) >= 0.6 (stored in the checkpoint)"


@pytest.mark.parametrize("positive", ["neg", 0])
def test_the_positive_class_by_name_or_index(positive):
    rule = DecisionRule.from_card(_card(extra={"threshold": 0.8, "positive_class": positive}))
    assert rule.positive_index == 0
    assert rule.decide(PROBS).tolist() == [0, 1, 1, 1]  # class 0 only where P(neg) >= 0.8


def test_many_classes_take_the_argmax_and_ignore_a_threshold():
    rule = DecisionRule.from_card(_card(("a", "b", "c"), extra={"threshold": 0.9}))
    assert not rule.binary
    assert rule.decide(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"threshold": 1.5}, "not in \\(0, 1\\)"),
        ({"threshold": "high"}, "is not a number"),
        ({"positive_class": "cat"}, "'cat' is not one of its classes"),
        ({"positive_class": 2}, "is not 0, 1 or a class name"),
    ],
)
def test_bad_stored_values_are_one_line_errors(extra, match):
    with pytest.raises(UserError, match=match):
        DecisionRule.from_card(_card(extra=extra))
