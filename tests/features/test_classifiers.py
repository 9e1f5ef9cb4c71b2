"""Classic classifiers: grid searches over stratified folds, rebalancing, probabilities per class."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ignite_cv.features.classifiers import (
    CLASSIFIERS,
    check_cv_folds,
    class_probabilities,
    fit_classifier,
    make_search,
)
from ignite_cv.utils.errors import UserError


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([0] * (n // 3) + [1] * (n - n // 3))
    x = rng.normal(size=(n, 4)) + y[:, None] * 2.0
    return x, y


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_separates_separable_features(name):
    x, y = _blobs()
    fitted = fit_classifier(name, x, y, num_classes=2, cv_folds=3, seed=0)
    assert fitted["scoring"] == "roc_auc" and fitted["cv_mean"] > 0.9
    probs = class_probabilities(fitted["model"], x, 2)
    assert probs.shape == (60, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y).mean() > 0.9


def test_the_search_is_stratified_seeded_and_scored_for_the_task():
    search = make_search("logreg", 5, "balanced", cv_folds=4, seed=7)
    assert search.scoring == "accuracy" and search.cv.n_splits == 4 and search.cv.random_state == 7
    assert search.estimator.named_steps["classifier"].class_weight == "balanced"
    assert list(search.param_grid) == ["classifier__C"]
    assert make_search("svm", 2).param_grid == {"classifier__estimator__C": [0.1, 1.0, 10.0]}


def test_classes_missing_from_training_get_zero_probability():
    x, y = _blobs()
    fitted = fit_classifier("logreg", x, y, num_classes=3, cv_folds=3)
    probs = class_probabilities(fitted["model"], x, 3)
    assert probs.shape == (60, 3) and np.all(probs[:, 2] == 0.0)


def test_bad_cv_folds_and_rebalance_are_one_line_errors():
    _, y = _blobs()
    with pytest.raises(UserError, match=r"--cv-folds 21 needs 2 <= K <= 20"):
        check_cv_folds(21, y, "none")
    with pytest.raises(UserError, match="unknown --rebalance"):
        make_search("logreg", 2, "oversample")


@pytest.mark.skipif(importlib.util.find_spec("imblearn") is not None, reason="imbalanced-learn is installed")
def test_smote_without_imbalanced_learn_says_how_to_install_it():
    with pytest.raises(UserError, match=r"needs imbalanced-learn; pip install 'ignite_cv\[imbalance\]'"):
        make_search("logreg", 2, "smote")


@pytest.mark.skipif(importlib.util.find_spec("imblearn") is None, reason="imbalanced-learn is not installed")
def test_smote_oversamples_inside_each_training_fold_only():
    search = make_search("logreg", 2, "smote", cv_folds=3)
    assert list(search.estimator.named_steps) == ["scale", "smote", "classifier"]
    x, y = _blobs()
    fitted = fit_classifier("logreg", x, y, num_classes=2, rebalance="smote", cv_folds=3)
    assert fitted["cv_mean"] > 0.9
