"""Resume pieces: a resumed epoch skips the batches already trained on; checkpoint bookkeeping round-trips."""

from __future__ import annotations

import json

import torch
from ignite.engine import Engine, Events

from ignite_cv.handlers.checkpoint import SafetensorsSaver, best_checkpoint
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.models import build_model
from ignite_cv.training.resume import SkippingLoader, _checkpoint_items, _load_checkpoint_items
from ignite_cv.weights import ModelCard


def test_the_next_pass_skips_k_batches_once():
    loader = SkippingLoader([10, 11, 12, 13])
    loader.skip_next(3)
    assert list(loader) == [13]
    assert list(loader) == [10, 11, 12, 13]
    assert len(loader) == 4


def test_checkpoint_bookkeeping_round_trips_through_json(tmp_path):
    model = build_model("mlp", 1, (2, 2), 3, hidden_sizes=[4], batch_norm=False, dropout=0.0)
    card = ModelCard("mlp", {"hidden_sizes": [4]}, ["a", "b", "c"], 1, [2, 2], 3, {"kind": "none"})
    epoch = {"n": 0}

    def checkpoint():
        saver = SafetensorsSaver(tmp_path, card, lambda: epoch["n"])
        return best_checkpoint(model, saver, Monitor("accuracy", "max"), 2, lambda: epoch["n"])

    original = checkpoint()
    evaluator = Engine(lambda e, b: None)
    scores = iter([0.5, 0.75, 0.6])

    def score(engine):
        epoch["n"] += 1
        engine.state.metrics["accuracy"] = next(scores)

    evaluator.add_event_handler(Events.COMPLETED, score)
    evaluator.add_event_handler(Events.COMPLETED, original)
    for _ in range(3):
        evaluator.run([0])
    items = json.loads(json.dumps(_checkpoint_items(original)))
    assert items == [
        [0.6, "best_epoch=3_accuracy=0.6000.safetensors"],
        [0.75, "best_epoch=2_accuracy=0.7500.safetensors"],
    ]
    restored = checkpoint()
    _load_checkpoint_items(restored, items)
    assert restored.last_checkpoint == original.last_checkpoint == "best_epoch=2_accuracy=0.7500.safetensors"
    assert torch.equal(torch.tensor([i.priority for i in restored._saved]), torch.tensor([0.6, 0.75]))
