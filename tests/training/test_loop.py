"""The epoch loop: a phase runs to its end on one timeline, leaves the shared evaluator as it found it,
and gives its hooks the objects a phase trains with."""

from __future__ import annotations

import json

import torch
from ignite.engine import Events
from torch import nn

from ignite_cv.data.loaders import TensorLoader
from ignite_cv.engine import StepOptions, create_evaluator
from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.history import MetricsHistory
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.metrics import evaluation_metrics
from ignite_cv.models import build_model
from ignite_cv.phases import Phase
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask
from ignite_cv.training.loop import LoopParts, PhaseHook, PhaseRun, run_phase
from ignite_cv.training.resume import SkippingLoader


def _parts(tmp_path, patience_metric: str = "accuracy") -> LoopParts:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.randint(0, 100, (64, 1, 4, 4), generator=generator, dtype=torch.uint8)
    images[labels == 1] += 120  # separable
    task = ClassificationTask(2)
    model = build_model("mlp", 1, (4, 4), task.num_outputs, hidden_sizes=[8], batch_norm=False, dropout=0.0)
    pipeline = BatchPipeline(nn.Identity())
    device = torch.device("cpu")
    step = StepOptions()
    evaluator = create_evaluator(model, task, pipeline, device, step, evaluation_metrics(task, device))
    monitor = Monitor(patience_metric, "max")
    parts = LoopParts(
        model=model,
        task=task,
        pipeline=pipeline,
        device=device,
        step=step,
        train_loader=SkippingLoader(TensorLoader(images, labels, 16, shuffle=True, seed=0, drop_last=True)),
        val_loader=TensorLoader(images, labels, 32, shuffle=False, seed=0),
        evaluator=evaluator,
        monitor=monitor,
        best=BestWeights(model, monitor),
        total_epochs=5,
        history=MetricsHistory(tmp_path / "metrics.jsonl"),
    )
    parts.best.attach(evaluator, lambda: parts.timeline.epoch)
    return parts


class _Recorder(PhaseHook):
    """A phase hook that records what it is given."""

    def __init__(self) -> None:
        self.runs: list[PhaseRun] = []
        self.epochs_seen: list[int] = []

    def attach(self, parts, run):
        self.runs.append(run)
        handle = parts.evaluator.add_event_handler(
            Events.COMPLETED, lambda _: self.epochs_seen.append(parts.timeline.epoch)
        )
        return [handle]

    def finish(self, parts, run):
        return {"recorded": len(self.epochs_seen)}


def _handler_count(engine) -> int:
    return sum(len(handlers) for handlers in engine._event_handlers.values())


def test_two_phases_continue_one_timeline_and_history(tmp_path):
    parts = _parts(tmp_path)
    recorder = _Recorder()
    first = run_phase(parts, Phase("warmup", 2, "adam", 0.01, 0.0), 0, [recorder])
    second = run_phase(parts, Phase("finetune", 3, "sgd", 0.01, 0.0, scheduler="cosine"), 1, [recorder])
    assert (first["name"], first["epochs"], second["name"], second["epochs"]) == ("warmup", 2, "finetune", 3)
    assert (parts.timeline.epoch, parts.timeline.iteration) == (5, 5 * 4)
    assert recorder.epochs_seen == [1, 2, 3, 4, 5]
    assert [(r.index, r.offset_epoch, r.offset_iteration) for r in recorder.runs] == [(0, 0, 0), (1, 2, 8)]
    assert (first["recorded"], second["recorded"]) == (2, 5)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["phase"]) for r in rows] == [(1, "warmup"), (2, "warmup")] + [
        (e, "finetune") for e in (3, 4, 5)
    ]
    assert parts.phase_results == [first, second]


def test_the_shared_evaluator_keeps_only_its_own_handlers_after_a_phase(tmp_path):
    parts = _parts(tmp_path)
    before = _handler_count(parts.evaluator)
    run_phase(parts, Phase("train", 2, "adamw", 0.01, 0.0, scheduler="plateau", patience=3), 0, [_Recorder()])
    assert _handler_count(parts.evaluator) == before


def test_early_stopping_ends_a_phase_and_says_so(tmp_path):
    parts = _parts(tmp_path, patience_metric="loss")  # loss monitored as "max": it never improves
    result = run_phase(parts, Phase("train", 10, "adamw", 0.01, 0.0, patience=2), 0)
    assert (result["epochs"], result["stopped_by"]) == (3, "early_stopping")


def test_a_phase_trains_the_model_it_is_given(tmp_path):
    parts = _parts(tmp_path)
    start = {k: v.clone() for k, v in parts.model.state_dict().items()}
    result = run_phase(parts, Phase("train", 3, "adamw", 0.05, 0.0), 0)
    assert any(not torch.equal(start[k], v) for k, v in parts.model.state_dict().items())
    assert result["params"] == {"total": 8 * 16 + 8 + 8 + 1, "trainable": 8 * 16 + 8 + 8 + 1}
    assert parts.best.best_epoch in (1, 2, 3)
