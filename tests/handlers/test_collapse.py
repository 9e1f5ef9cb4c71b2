"""The collapse warning: once, after several validations that all predict one class."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_cv.handlers.collapse import CollapseWarning


def _evaluations(matrices: list[list[list[int]]], epochs: int = 3) -> tuple[list[str], CollapseWarning]:
    said: list[str] = []
    evaluator = Engine(lambda e, b: None)
    epoch = {"n": 0}
    warning = CollapseWarning(["normal", "pneumonia"], said.append, lambda: epoch["n"], epochs=epochs)
    warning.attach(evaluator)
    for matrix in matrices:
        epoch["n"] += 1
        evaluator.state.metrics = {"confusion_matrix": torch.tensor(matrix), "f1_macro": 0.4}
        evaluator._fire_event(Events.COMPLETED)
    return said, warning


ALL_PNEUMONIA = [[0, 25], [0, 75]]  # rows: true class; every prediction in column 1
MIXED = [[20, 5], [10, 65]]


def test_three_collapsed_validations_in_a_row_warn_once_with_the_causes_and_flags():
    said, warning = _evaluations([ALL_PNEUMONIA] * 5)
    assert len(said) == 1 and warning.warned_at == 3
    line = said[0]
    assert (
        "every validation prediction has been a single class (now 'pneumonia': accuracy 0.750 = its share"
        in line
    )
    for flag in ("--lr", "--class-weights balanced", "--sampler balanced", "--loss focal"):
        assert flag in line
    assert "\n" not in line


def test_a_model_flipping_from_one_class_to_the_other_is_still_collapsed():
    said, _ = _evaluations([[[25, 0], [75, 0]], [[25, 0], [75, 0]], ALL_PNEUMONIA])
    assert len(said) == 1 and "(now 'pneumonia'" in said[0]


def test_a_validation_that_predicts_both_classes_resets_the_count():
    said, warning = _evaluations([ALL_PNEUMONIA, ALL_PNEUMONIA, MIXED, ALL_PNEUMONIA, ALL_PNEUMONIA])
    assert said == [] and warning.streak == 2
    said, _ = _evaluations([MIXED] * 6)
    assert said == []


def test_the_number_of_epochs_is_checked():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        CollapseWarning(["a", "b"], print, lambda: 0, epochs=0)


def test_the_wait_is_a_quarter_of_the_planned_epochs_and_at_least_three():
    from ignite_cv.handlers.collapse import collapse_epochs

    assert [collapse_epochs(n) for n in (1, 5, 12, 20, 90)] == [3, 3, 3, 5, 22]


def test_one_class_called_with_scores_that_rank_is_not_a_collapse():
    said: list[str] = []
    evaluator = Engine(lambda e, b: None)
    warning = CollapseWarning(["normal", "pneumonia"], said.append, lambda: 1, epochs=3)
    warning.attach(evaluator)
    for auc in (0.89, 0.93, 0.95, 0.55, 0.52, 0.50):  # a settling threshold, then constant scores
        evaluator.state.metrics = {"confusion_matrix": torch.tensor(ALL_PNEUMONIA), "roc_auc": auc}
        evaluator._fire_event(Events.COMPLETED)
        assert len(said) == (1 if auc == 0.50 else 0)
    assert warning.streak == 3
