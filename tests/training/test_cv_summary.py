"""The study's statistics: mean, sample std, Student's t interval; the CSV's rows."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from scipy import stats

from ignite_cv.training.cv_summary import aggregate, describe, format_table, summary_csv


def test_describe_is_the_mean_the_sample_std_and_the_t_interval():
    values = [0.91, 0.87, 0.95, 0.89, 0.93]
    out = describe(values)
    assert out["mean"] == pytest.approx(np.mean(values), abs=1e-15)
    assert out["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert out["ci95"] == pytest.approx([low, high], abs=1e-12)
    assert out["n"] == 5 and out["values"] == values


def test_undefined_values_are_left_out_and_one_value_has_no_interval():
    out = describe([0.8, math.nan, 0.6])
    assert out["n"] == 2 and out["mean"] == pytest.approx(0.7)
    single = describe([0.5])
    assert single["std"] == 0.0 and math.isnan(single["ci95"][0])
    assert math.isnan(describe([math.nan])["mean"])


def _summary():
    per_fold = [
        {"fold": 0, "val": {"accuracy": 0.8, "roc_auc": 0.9}, "test": {"accuracy": 0.7, "roc_auc": 0.85}},
        {"fold": 1, "val": {"accuracy": 0.6, "roc_auc": 0.8}, "test": {"accuracy": 0.75, "roc_auc": 0.8}},
    ]
    return {
        "per_fold": per_fold,
        "aggregate": aggregate(per_fold),
        "out_of_fold": {"metrics": {"accuracy": 0.7, "roc_auc": 0.84}},
        "ensemble_test": {"metrics": {"accuracy": 0.76, "roc_auc": 0.86}},
    }


def test_aggregate_and_the_csv_rows():
    summary = _summary()
    assert summary["aggregate"]["val"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["aggregate"]["test"]["roc_auc"]["values"] == [0.85, 0.8]
    rows = list(csv.reader(io.StringIO(summary_csv(summary))))
    assert rows[0] == ["row", "split", "accuracy", "roc_auc"]
    labels = [(r[0], r[1]) for r in rows[1:]]
    assert labels[:4] == [("fold-0", "val"), ("fold-0", "test"), ("fold-1", "val"), ("fold-1", "test")]
    assert ("mean", "test") in labels and ("ci95_high", "val") in labels
    assert rows[-2] == ["out_of_fold", "train+val", "0.7", "0.84"]
    assert rows[-1] == ["ensemble", "test", "0.76", "0.86"]
    mean_test = next(r for r in rows if r[:2] == ["mean", "test"])
    assert float(mean_test[2]) == pytest.approx(0.725)


def test_the_console_table_has_a_row_per_fold_then_the_summaries():
    lines = format_table(_summary(), "roc_auc").splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["fold", "fold", "mean", "out-of-fold", "fold"]
    assert lines[3].split("  ")[0] == "mean ± std"
    assert lines[3].split()[-6:] == ["0.8500", "±", "0.0707", "0.8250", "±", "0.0354"]
    assert lines[-1].split()[-1] == "0.8600"
