"""Profiling: model measurements, and the run profiler's tables, trace and one-paragraph verdict."""

from __future__ import annotations

import json
import time

import pytest
import torch
from ignite.engine import Events
from ignite.metrics import Accuracy
from torch import nn

from ignite_cv.engine import StepOptions, create_evaluator, create_trainer
from ignite_cv.models import build_model
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.profiling import (
    attach_run_profiler,
    format_comparison,
    format_profile,
    interleaved_latency,
    measure_latency,
    peak_memory,
    profile_model,
)
from ignite_cv.pruning import count_macs_params
from ignite_cv.task import ClassificationTask


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


# ----------------------------------------------------------------------------------------------
# run profiler


def _run(tmp_path, data_sleep: float = 0.0, handler_sleep: float = 0.0, epochs: int = 2, batches: int = 4):
    # Sleeps are wall time whatever the machine's load; they dwarf the tiny model's steps.
    torch.manual_seed(0)
    task = ClassificationTask(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    pipeline = BatchPipeline(nn.Identity())
    device = torch.device("cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = create_trainer(model, optimizer, task, pipeline, device, StepOptions())
    accuracy = Accuracy(output_transform=lambda o: (o["scores"], o["y"]))
    evaluator = create_evaluator(model, task, pipeline, device, StepOptions(), {"accuracy": accuracy})
    batch = (torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8), torch.randint(0, 3, (8,)))

    class Loader:
        def __len__(self):
            return batches

        def __iter__(self):
            for _ in range(batches):
                time.sleep(data_sleep)
                yield batch

    val = [batch, batch]

    def slow_handler(_):
        time.sleep(handler_sleep)

    if handler_sleep:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, slow_handler)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run(val))
    messages = []
    finish = attach_run_profiler(
        trainer, evaluator, tmp_path, device, warmup_steps=2, trace_steps=2, say=messages.append
    )
    trainer.run(Loader(), max_epochs=epochs)
    result = finish()
    return result, messages, evaluator, val


def test_slow_data_loading_is_named_with_its_fix(tmp_path):
    result, messages, evaluator, val = _run(tmp_path, data_sleep=0.08)
    assert result["largest"] == "data loading"
    assert messages == [result["summary"]]
    assert "raise --workers or use --data-on-device" in result["summary"]
    profile_dir = tmp_path / "profile"
    details = json.loads((profile_dir / "profile.json").read_text())
    # 2 validation runs × 2 batches: added up over runs, each step counted once.
    assert details["evaluator"]["step"]["calls"] == 4 and details["iterations"] == 8
    assert details["trainer"]["data"]["calls"] == 8 and details["trainer"]["data"]["mean_ms"] >= 75
    timing = (profile_dir / "timing.md").read_text()
    assert (
        "HandlersTimeProfiler" in timing and "BasicTimeProfiler" in timing and "[runs validation]" in timing
    )
    traces = list((profile_dir / "trace").glob("*.pt.trace.json"))
    assert len(traces) == 1 and "ignite_cv/iteration" in traces[0].read_text()
    assert (profile_dir / "summary.txt").read_text().strip() == result["summary"]
    # The evaluator outlives the phase: its profilers are gone, and it still runs.
    assert not any(
        "Profiler" in repr(h) for handlers in evaluator._event_handlers.values() for h, _, _ in handlers
    )
    evaluator.run(val)


def test_a_slow_handler_is_named(tmp_path):
    result, _, _, _ = _run(tmp_path, handler_sleep=0.08)
    assert result["largest"] == "other handlers"
    assert "slow_handler" in result["summary"] and "make it run less often" in result["summary"]


def test_exceptions_still_propagate_with_the_profiler_attached(tmp_path):
    # Ignite 0.5's HandlersTimeProfiler alone makes Engine swallow them (an empty EXCEPTION_RAISED entry).
    from ignite.engine import Engine

    trainer, evaluator = Engine(lambda e, b: 0.0), Engine(lambda e, b: {})

    def broken_metric(_):
        raise KeyError("loss")

    evaluator.add_event_handler(Events.ITERATION_COMPLETED, broken_metric)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([1, 2]))
    attach_run_profiler(trainer, evaluator, tmp_path, say=None)
    with pytest.raises(KeyError, match="loss"):
        trainer.run([1, 2, 3], max_epochs=2)
