"""TensorBoard through Ignite's OutputHandler: one timeline of epochs and iterations across phases."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ignite_cv.handlers.tensorboard import LR_EVERY, RunTensorBoard


def _phase(
    board: RunTensorBoard, timeline: dict, index: int, epochs: int, lr: float, evaluator: Engine
) -> None:
    """A phase whose trainer moves the run's timeline on and logs through the board."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    trainer = Engine(lambda e, b: None)
    start_epoch, start_iteration = timeline["epoch"], timeline["iteration"]
    trainer.add_event_handler(
        Events.EPOCH_STARTED, lambda e: timeline.update(epoch=start_epoch + e.state.epoch)
    )
    trainer.add_event_handler(
        Events.ITERATION_STARTED, lambda e: timeline.update(iteration=start_iteration + e.state.iteration)
    )

    def train_metrics(engine: Engine) -> None:
        engine.state.metrics.update(loss=1.0 / timeline["epoch"], accuracy=0.1 * timeline["epoch"])

    trainer.add_event_handler(Events.EPOCH_COMPLETED, train_metrics)
    handles = board.attach_phase(trainer, evaluator, optimizer, index, ["loss", "precision"])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([0]))
    trainer.run(range(LR_EVERY), max_epochs=epochs)
    for handle in handles:
        handle.remove()


def test_two_phases_log_on_one_timeline(tmp_path):
    timeline = {"epoch": 0, "iteration": 0}
    board = RunTensorBoard(tmp_path, lambda: timeline["epoch"], lambda: timeline["iteration"])
    evaluator = Engine(lambda e, b: None)

    def val_metrics(engine: Engine) -> None:
        epoch = timeline["epoch"]
        engine.state.metrics.update(loss=2.0 / epoch, precision=torch.tensor([0.5, 0.25 * epoch]))
        engine.state.metrics["confusion_matrix"] = torch.eye(2)  # not named: not logged

    evaluator.add_event_handler(Events.COMPLETED, val_metrics)
    _phase(board, timeline, 0, 2, 0.1, evaluator)
    _phase(board, timeline, 1, 1, 0.01, evaluator)
    board.close()
    events = EventAccumulator(str(tmp_path)).Reload()

    def series(tag):
        return [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]

    assert series("train/loss") == [(1, 1.0), (2, 0.5), (3, round(1 / 3, 6))]
    assert series("val/loss") == [(1, 2.0), (2, 1.0), (3, round(2 / 3, 6))]
    assert series("val/precision/1") == [(1, 0.25), (2, 0.5), (3, 0.75)]
    assert series("lr/group_0") == [(10, 0.1), (20, 0.1), (30, 0.01)]  # every LR_EVERY run iterations
    assert series("phase") == [(1, 0.0), (2, 0.0), (3, 1.0)]
    assert not any("confusion" in tag for tag in events.Tags()["scalars"])


def test_a_removed_phase_no_longer_logs_validation(tmp_path):
    timeline = {"epoch": 0, "iteration": 0}
    board = RunTensorBoard(tmp_path, lambda: timeline["epoch"], lambda: timeline["iteration"])
    evaluator = Engine(lambda e, b: None)
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: e.state.metrics.update(loss=1.0, precision=torch.tensor([1.0, 0.5]))
    )
    _phase(board, timeline, 0, 1, 0.1, evaluator)
    timeline["epoch"] = 5
    evaluator.run([0])  # after the phase: its handler was removed
    board.close()
    events = EventAccumulator(str(tmp_path)).Reload()
    assert [e.step for e in events.Scalars("val/loss")] == [1]


def test_hparams_hold_the_config_and_the_test_metrics(tmp_path):
    from ignite_cv.handlers.tensorboard import HPARAMS_RUN

    board = RunTensorBoard(tmp_path, lambda: 0, lambda: 0)
    config = {
        "model": "tinyvgg",
        "lr": 0.004,
        "hidden_sizes": (512, 256),
        "epochs": 3,
        "amp": None,
        "deterministic": True,
    }
    board.add_hparams(config, {"accuracy": 0.93, "roc_auc": float("nan"), "note": "x"})
    board.close()
    events = EventAccumulator(str(tmp_path / HPARAMS_RUN))
    events.Reload()
    assert events.Tags()["scalars"] == ["test/accuracy"]  # NaN and text are not metrics
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(0.93)
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in start.session_start_info.hparams.items()
    }
    assert values == {
        "model": "tinyvgg",
        "lr": 0.004,
        "hidden_sizes": "512,256",
        "epochs": 3.0,
        "amp": "None",
        "deterministic": True,
    }
