"""The predictions CSV: sorted rows, skipped files listed, float32 round trip, top-k, atomic."""

from __future__ import annotations

import csv

import numpy as np
import torch

from ignite_cv.inference.decision import DecisionRule
from ignite_cv.inference.inputs import LeftOut
from ignite_cv.inference.results import build_predictions
from ignite_cv.inference.table import format_probability, write_predictions_csv
from ignite_cv.weights import ModelCard


def _result():
    names = ["x", "y", "z"]
    rule = DecisionRule.from_card(ModelCard("m", {}, names, 1, [4, 4], 3, {"kind": "none"}))
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    sources = ["d/b.png", "d/a.png", "d/b.png"]  # a path seen twice is listed once
    skipped = [LeftOut("d/0.txt", "not an image file (.txt)"), LeftOut("d/c.png", "damaged")]
    return build_predictions(sources, [0, 1, 2], probs, names, rule, skipped), probs


def test_rows_are_sorted_by_path_and_skipped_files_are_listed(tmp_path):
    result, probs = _result()
    out = tmp_path / "sub" / "p.csv"
    assert write_predictions_csv(out, result, top_k=2) == 4
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "path", "status", "predicted", "probability", "prob_x", "prob_y", "prob_z",
        "top1", "top1_probability", "top2", "top2_probability", "reason",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ["d/0.txt", "d/a.png", "d/b.png", "d/c.png"]
    assert rows[1] == ["d/0.txt", "skipped", *[""] * 9, "not an image file (.txt)"]
    assert rows[2][1:3] == ["ok", "x"] and rows[2][7:11] == ["x", "0.6", "y", "0.3"]
    assert rows[3][2] == "y"  # the first prediction of d/b.png
    assert [np.float32(v) for v in rows[3][4:7]] == probs[0].tolist()
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.csv"]  # no temporary file left


def test_probabilities_round_trip_to_the_same_float32():
    for value in np.random.default_rng(0).random(200, dtype=np.float32):
        assert np.float32(format_probability(float(value))) == value
    assert format_probability(1.0) == "1" and format_probability(0.5) == "0.5"
