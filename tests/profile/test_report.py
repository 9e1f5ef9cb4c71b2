"""The profiles' tables: a comparison of two models gives second/first ratios."""

from __future__ import annotations

import torch

from ignite_cv.models import build_model
from ignite_cv.profile.model import profile_model
from ignite_cv.profile.report import format_comparison


def test_comparison_gives_ratios():
    torch.manual_seed(0)
    wide = profile_model(
        build_model("mlp", 1, (4, 4), 2, hidden_sizes=[32]), (1, 4, 4), (1,), repeats=2, name="wide"
    )
    narrow = profile_model(
        build_model("mlp", 1, (4, 4), 2, hidden_sizes=[16]), (1, 4, 4), (1,), repeats=2, name="narrow"
    )
    text = format_comparison(wide, narrow)
    row = next(line for line in text.splitlines() if line.startswith("| parameters "))
    ratio = narrow.params / wide.params
    assert "wide" in text and "narrow" in text and f"{ratio:.3f}×" in row
