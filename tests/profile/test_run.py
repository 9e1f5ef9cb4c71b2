"""A run's profile: the time tables, the trace and the one-paragraph verdict, with Ignite's profilers."""

from __future__ import annotations

import json
import time

import pytest
import torch
from ignite.engine import Events
from ignite.metrics import Accuracy
from torch import nn

from ignite_cv.engine import StepOptions, create_evaluator, create_trainer
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.profile.run import attach_run_profiler
from ignite_cv.task import ClassificationTask

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
