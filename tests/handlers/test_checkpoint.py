"""Model checkpoints: Ignite's Checkpoint keeps the best k by score; our saver writes the card with them."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

from ignite_cv.handlers.checkpoint import (
    SafetensorsSaver,
    best_checkpoint,
    last_checkpoint,
    top_checkpoint_path,
)
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.models import build_model
from ignite_cv.weights import ModelCard, load_model, read_card

ARGS = {"hidden_sizes": [4], "batch_norm": False, "dropout": 0.0}


def _model_and_card():
    model = build_model("mlp", 1, (2, 2), 3, **ARGS)
    return model, ModelCard("mlp", ARGS, ["a", "b", "c"], 1, [2, 2], 3, {"kind": "none"})


def _evaluate_with(scores: list[float], checkpoint, model) -> Engine:
    """Run an evaluator ``len(scores)`` times with scripted accuracies; the weights change each time."""
    evaluator = Engine(lambda e, b: None)
    values = iter(scores)

    def score(engine: Engine) -> None:
        engine.state.metrics["accuracy"] = next(values)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)

    evaluator.add_event_handler(Events.COMPLETED, score)
    evaluator.add_event_handler(Events.COMPLETED, checkpoint)
    for _ in scores:
        evaluator.run([0])
    return evaluator


def test_the_best_k_files_are_kept_and_the_top_one_is_named(tmp_path):
    model, card = _model_and_card()
    epoch = {"n": 0}
    saver = SafetensorsSaver(tmp_path, card, lambda: epoch["n"])
    best = best_checkpoint(model, saver, Monitor("accuracy", "max"), 2, lambda: epoch["n"])
    scores = [0.5, 0.8, 0.6, 0.9, 0.7]
    evaluator = Engine(lambda e, b: None)
    values = iter(scores)

    def score(engine: Engine) -> None:
        epoch["n"] += 1
        engine.state.metrics["accuracy"] = next(values)

    evaluator.add_event_handler(Events.COMPLETED, score)
    evaluator.add_event_handler(Events.COMPLETED, best)
    for _ in scores:
        evaluator.run([0])
    names = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert names == ["best_epoch=2_accuracy=0.8000.safetensors", "best_epoch=4_accuracy=0.9000.safetensors"]
    assert top_checkpoint_path(best) == tmp_path / "best_epoch=4_accuracy=0.9000.safetensors"


def test_a_saved_file_rebuilds_the_model_and_records_epoch_and_score(tmp_path):
    model, card = _model_and_card()
    saver = SafetensorsSaver(tmp_path, card, lambda: 7)
    best = best_checkpoint(model, saver, Monitor("accuracy", "max"), 1, lambda: 7)
    _evaluate_with([0.25], best, model)
    path = top_checkpoint_path(best)
    extra = read_card(path).extra
    assert (extra["epoch"], extra["score_name"], extra["score"]) == (7, "accuracy", 0.25)
    reloaded, _ = load_model(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor)


def test_the_last_checkpoint_keeps_one_file_named_by_epoch(tmp_path):
    model, card = _model_and_card()
    epoch = {"n": 0}
    last = last_checkpoint(model, SafetensorsSaver(tmp_path, card, lambda: epoch["n"]), lambda: epoch["n"])
    trainer = Engine(lambda e, b: None)
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: epoch.update(n=epoch["n"] + 1))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, last)
    trainer.run([0], max_epochs=3)
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["last_epoch=3.safetensors"]


def test_a_saver_without_a_folder_writes_nothing_and_names_no_file(tmp_path):
    model, card = _model_and_card()
    saver = SafetensorsSaver(None, card, lambda: 1)
    best = best_checkpoint(model, saver, Monitor("accuracy", "max"), 2, lambda: 1)
    _evaluate_with([0.5, 0.9], best, model)
    assert [item.filename for item in best._saved] == [  # Ignite's bookkeeping as on the writing rank
        "best_epoch=1_accuracy=0.5000.safetensors",
        "best_epoch=1_accuracy=0.9000.safetensors",
    ]
    assert top_checkpoint_path(best) is None
    assert list(tmp_path.iterdir()) == []


def test_wait_for_returns_once_that_file_is_written_while_later_writes_go_on(tmp_path):
    import threading

    from ignite_cv.utils.background_writer import BackgroundWriter

    model, card = _model_and_card()
    writer = BackgroundWriter()
    saver = SafetensorsSaver(tmp_path, card, lambda: 1, writer)
    saver(model.state_dict(), "best_epoch=1.safetensors", {"score_name": "accuracy", "priority": 0.5})
    release = threading.Event()
    writer.submit(release.wait, 5)  # a later write (the training state) still running
    saver.wait_for(tmp_path / "best_epoch=1.safetensors")
    assert read_card(tmp_path / "best_epoch=1.safetensors").extra["score"] == 0.5
    assert writer.pending == 1
    saver.wait_for(tmp_path / "never_written.safetensors")  # a file it did not write: nothing to wait for
    release.set()
    writer.close()
