"""The monitored metric: auto picks ROC-AUC for two classes, the mode follows the metric, NaN is worst."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.utils.errors import UserError


def _engine(**metrics) -> Engine:
    engine = Engine(lambda e, b: None)
    engine.state.metrics = dict(metrics)
    return engine


def test_auto_is_roc_auc_for_two_classes_and_accuracy_otherwise():
    assert Monitor.resolve("auto", "auto", binary=True) == Monitor("roc_auc", "max")
    assert Monitor.resolve("auto", "auto", binary=False) == Monitor("accuracy", "max")


def test_the_mode_follows_the_metric_unless_given():
    assert Monitor.resolve("loss", "auto", binary=False) == Monitor("loss", "min")
    assert Monitor.resolve("f1_macro", "auto", binary=False) == Monitor("f1_macro", "max")
    assert Monitor.resolve("loss", "max", binary=False) == Monitor("loss", "max")


def test_scores_are_higher_is_better_and_nan_is_the_worst():
    assert Monitor("loss", "min").score(_engine(loss=0.25)) == -0.25
    assert Monitor("accuracy", "max").score(_engine(accuracy=torch.tensor(0.75))) == 0.75
    assert Monitor("accuracy", "max").score(_engine(accuracy=float("nan"))) == -math.inf


def test_an_unknown_metric_is_a_one_line_error_listing_the_metrics():
    with pytest.raises(
        UserError, match=r"--monitor 'acc' is not a validation metric; use one of: accuracy, loss"
    ):
        Monitor("acc", "max").value(_engine(loss=1.0, accuracy=0.5))


def test_a_mode_must_be_max_or_min():
    with pytest.raises(ValueError, match="mode"):
        Monitor("loss", "down")


def test_an_unknown_or_unavailable_monitor_is_refused_before_training():
    import pytest

    from ignite_cv.handlers.monitor import Monitor
    from ignite_cv.utils.errors import UserError

    with pytest.raises(UserError, match="--monitor 'bogus' is not a validation metric; use auto or one of"):
        Monitor.check_name("bogus")
    Monitor.check_name("f1_macro")
    with pytest.raises(UserError, match="top5 is reported for more than 10 classes"):
        Monitor("top5", "max").check_available({"loss": 0, "accuracy": 0})
