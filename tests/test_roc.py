"""ROC-AUC and ROC curves: agree with sklearn, JSON-safe, honest on missing classes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ignite_cv.roc import roc_auc, roc_curves


def synthetic(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels covering every class and noisy softmax probabilities that are informative but imperfect."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    rng.shuffle(y)
    logits = rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_binary_uses_probability_of_class_1():
    y, p = synthetic(80, 2)
    expected = roc_auc_score(y, p[:, 1])
    assert roc_auc(y, p) == pytest.approx(expected, abs=1e-12)
    # Column 0 is not used: scrambling it changes nothing.
    scrambled = p.copy()
    scrambled[:, 0] = np.random.default_rng(1).random(len(y))
    assert roc_auc(y, scrambled) == roc_auc(y, p)
    assert 0.5 < expected < 1.0


def test_multiclass_is_sklearn_macro_ovr():
    y, p = synthetic(100, 5)
    expected = roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert roc_auc(y, p) == pytest.approx(expected, abs=1e-12)


def test_accepts_tensors():
    y, p = synthetic(50, 3)
    assert roc_auc(torch.from_numpy(y), torch.from_numpy(p).to(torch.float32)) == pytest.approx(
        roc_auc(y, p), abs=1e-6
    )


def test_absent_class_is_left_out_not_an_error():
    y, p = synthetic(100, 5)
    keep = y != 3
    y, p = y[keep], p[keep]
    value = roc_auc(y, p)
    assert math.isfinite(value)
    per_class = [roc_auc_score(y == k, p[:, k]) for k in (0, 1, 2, 4)]
    assert value == pytest.approx(np.mean(per_class), abs=1e-12)
    curves = roc_curves(y, p, list("abcde"))
    assert set(curves["curves"]) == {"a", "b", "c", "e"}
    assert curves["classes_without_curve"] == ["d"]
    assert curves["auc"] == value


def test_single_class_or_nonfinite_is_nan():
    y = np.zeros(10, dtype=int)
    p = np.full((10, 3), 1 / 3)
    assert math.isnan(roc_auc(y, p))
    assert math.isnan(roc_auc(y, p[:, :2] * 1.5))
    y2, p2 = synthetic(20, 2)
    p2[0, 1] = np.nan
    assert math.isnan(roc_auc(y2, p2))
    curves = roc_curves(y, p, ["a", "b", "c"])
    assert curves["auc"] is None and curves["curves"] == {}
    json.dumps(curves, allow_nan=False)


@pytest.mark.parametrize("num_classes", [2, 5])
def test_curves_json_safe_and_auc_equal_to_roc_auc(num_classes):
    y, p = synthetic(90, num_classes)
    names = [f"class{k}" for k in range(num_classes)]
    curves = roc_curves(y, p, names)
    restored = json.loads(json.dumps(curves, allow_nan=False))
    assert restored["auc"] == roc_auc(y, p)
    if num_classes == 2:
        assert list(restored["curves"]) == ["class1"]
        assert restored["average"] == "binary"
        assert restored["curves"]["class1"]["auc"] == restored["auc"]
    else:
        assert list(restored["curves"]) == names
        assert restored["average"] == "macro_ovr"
        assert restored["auc"] == pytest.approx(np.mean([c["auc"] for c in restored["curves"].values()]))
    for curve in restored["curves"].values():
        assert curve["fpr"][0] == 0.0 and curve["fpr"][-1] == 1.0
        assert curve["tpr"][-1] == 1.0
        assert len(curve["fpr"]) == len(curve["tpr"]) == len(curve["thresholds"])
        assert curve["thresholds"][0] is None  # sklearn's +inf start, written as null
        assert all(t is not None for t in curve["thresholds"][1:])


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        roc_auc(np.array([0, 1]), np.array([0.2, 0.8]))
    with pytest.raises(ValueError):
        roc_auc(np.array([0, 1, 1]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError):
        roc_auc(np.array([0, 2]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError):
        roc_curves(np.array([0, 1]), np.full((2, 2), 0.5), ["only one name"])


def test_average_ranks_match_scipy_on_ties():
    from scipy.stats import rankdata

    from ignite_cv.roc import average_ranks

    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, size=(200, 3)).astype(np.float32)  # many ties
    values[:, 2] = rng.random(200)  # none
    np.testing.assert_array_equal(average_ranks(values), rankdata(values, axis=0))


@pytest.mark.parametrize("seed", range(6))
def test_roc_points_equal_sklearn_roc_curve(seed):
    from sklearn.metrics import roc_curve

    from ignite_cv.roc import roc_points

    rng = np.random.default_rng(seed)
    n = [2, 7, 50, 400, 1000, 33][seed]
    positive = rng.random(n) < 0.4
    positive[:2] = [True, False]  # both classes present
    scores = rng.random(n)
    if seed % 2:  # heavy ties, as rounded probabilities have
        scores = np.round(scores, 1)
    fpr, tpr, thresholds = roc_points(positive, scores)
    sk_fpr, sk_tpr, sk_thresholds = roc_curve(positive.astype(np.int64), scores)
    assert np.array_equal(fpr, sk_fpr) and np.array_equal(tpr, sk_tpr)
    assert np.array_equal(thresholds, sk_thresholds)
