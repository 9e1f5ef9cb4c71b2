"""One model's cost: latency statistics, interleaved timing, MACs, peak memory, and their tables."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from ignite_cv.models import build_model
from ignite_cv.profile.model import (
    count_macs_params,
    interleaved_latency,
    measure_latency,
    peak_memory,
    profile_model,
)
from ignite_cv.profile.report import format_profile


class _Sleepy(nn.Module):
    """A linear layer that takes at least ``seconds`` per call."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.fc(x)


def test_latency_statistics_and_time_budget():
    stats = measure_latency(_Sleepy(0.002), torch.zeros(3, 4), warmup=1, repeats=7)
    assert stats.repeats == 7 and stats.batch_size == 3
    assert 2.0 <= stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert stats.throughput == pytest.approx(3 / (stats.median_ms / 1000))
    slow = measure_latency(_Sleepy(0.03), torch.zeros(1, 4), warmup=0, repeats=100, budget_s=0.05)
    assert slow.repeats == 5  # the budget stops it, but never below five samples


def test_two_models_are_timed_in_alternating_blocks():
    calls: list[str] = []

    class Tagged(_Sleepy):
        def __init__(self, tag: str, seconds: float) -> None:
            super().__init__(seconds)
            self.tag = tag

        def forward(self, x):
            calls.append(self.tag)
            return super().forward(x)

    slow, fast = interleaved_latency(
        [Tagged("slow", 0.004), Tagged("fast", 0.001)],
        [torch.zeros(1, 4)] * 2,
        warmup=0,
        repeats=10,
        rounds=5,
    )
    assert slow.repeats == fast.repeats == 10 and slow.median_ms > fast.median_ms
    assert calls[:6] == ["slow", "slow", "fast", "fast", "slow", "slow"]


def test_profile_model_figures():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), 4, hidden_units=8)
    profile = profile_model(
        model, (1, 8, 8), batch_sizes=(1, 16), warmup=1, repeats=3, top_ops=3, name="tiny"
    )
    macs, params = count_macs_params(model, torch.zeros(1, 1, 8, 8))
    assert (profile.macs, profile.params) == (macs, params) and profile.trainable == params
    assert [s.batch_size for s in profile.latency] == [1, 16]
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert weights < profile.peak_memory[1] < profile.peak_memory[16]
    assert len(profile.top_ops) == 3 and all(op["name"].startswith("aten::") for op in profile.top_ops)
    json.dumps(profile.to_dict())
    text = format_profile(profile)
    assert "MACs (1 image)" in text and f"{macs:,}" in text and "Top operators" in text


def test_peak_memory_grows_with_the_activations():
    model = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 2))
    small, large = peak_memory(model, torch.zeros(1, 64)), peak_memory(model, torch.zeros(256, 64))
    # 256 rows of 1024 float32 activations (1 MiB) at least are alive at once.
    assert large - small >= 255 * 1024 * 4
