"""Early stopping stops when the metric stalls; the restored weights equal the best checkpoint."""

import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping
from safetensors.torch import load_file

from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.checkpoint import SafetensorsSaver, best_checkpoint, top_checkpoint_path
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.weights import ModelCard, load_model

SCRIPTED_ACCURACY = [0.50, 0.70, 0.60, 0.65, 0.62, 0.90, 0.95]  # peaks at epoch 2, stalls after


def _card():
    return ModelCard(
        "mlp",
        {"hidden_sizes": [4], "batch_norm": False, "dropout": 0.0},
        ["a", "b", "c"],
        1,
        [2, 2],
        3,
        {"kind": "none"},
    )


def test_early_stopping_restores_the_best_checkpoint(tmp_path):
    from ignite_cv.models import build_model

    model = build_model("mlp", 1, (2, 2), 3, hidden_sizes=[4], batch_norm=False, dropout=0.0)
    trainer = Engine(lambda e, b: [p.data.add_(torch.randn_like(p)) for p in model.parameters()])
    evaluator = Engine(lambda e, b: None)
    scores = iter(SCRIPTED_ACCURACY)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(scores)))
    monitor = Monitor("accuracy", "max")
    best = BestWeights(model, monitor)
    best.attach(evaluator, lambda: trainer.state.epoch)
    checkpoint = best_checkpoint(
        model,
        SafetensorsSaver(tmp_path, _card(), lambda: trainer.state.epoch),
        monitor,
        keep=2,
        epoch_fn=lambda: trainer.state.epoch,
    )
    evaluator.add_event_handler(Events.COMPLETED, checkpoint)
    evaluator.add_event_handler(Events.COMPLETED, EarlyStopping(2, monitor.score, trainer))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([0]))
    trainer.run([0], max_epochs=len(SCRIPTED_ACCURACY))

    assert trainer.state.epoch == 4  # best at 2, no improvement at 3 and 4 → stop
    assert best.summary()["epoch"] == 2 and best.summary()["value"] == 0.70
    best_file = top_checkpoint_path(checkpoint)
    assert "epoch=2" in best_file.name
    assert len(list(tmp_path.glob("best_*.safetensors"))) == 2  # keep=2
    best.restore()
    saved = load_file(best_file)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    reloaded, card = load_model(best_file)
    assert card.extra["epoch"] == 2 and card.extra["score_name"] == "accuracy"
    x = torch.rand(5, 1, 2, 2)
    assert torch.equal(reloaded(x), model.eval()(x))


def test_min_mode_monitor_scores_lower_as_better():
    engine = Engine(lambda e, b: None)
    engine.state.metrics = {"loss": 0.3}
    assert Monitor("loss", "min").score(engine) == -0.3
    assert Monitor.resolve("auto", "auto", binary=True) == Monitor("roc_auc", "max")
    assert Monitor.resolve("loss", "auto", binary=False) == Monitor("loss", "min")


def _tied_run(tmp_path, scores, keep):
    """A scripted training whose validation scores are ``scores``: (best weights, checkpoint, model)."""
    from ignite_cv.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", 1, (2, 2), 3, hidden_sizes=[4], batch_norm=False, dropout=0.0)
    trainer = Engine(lambda e, b: [p.data.add_(torch.randn_like(p)) for p in model.parameters()])
    evaluator = Engine(lambda e, b: None)
    values = iter(scores)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(values)))
    monitor = Monitor("accuracy", "max")
    best = BestWeights(model, monitor)
    best.attach(evaluator, lambda: trainer.state.epoch)
    saver = SafetensorsSaver(tmp_path, _card(), lambda: trainer.state.epoch)
    checkpoint = best_checkpoint(model, saver, monitor, keep=keep, epoch_fn=lambda: trainer.state.epoch)
    evaluator.add_event_handler(Events.COMPLETED, checkpoint)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([0]))
    trainer.run([0], max_epochs=len(scores))
    return best, checkpoint, model


def test_on_tied_scores_summary_file_and_restored_weights_are_the_first_epoch(tmp_path):
    # epochs 2, 4 and 5 tie at the best score; 2 came first and stays the best everywhere
    for keep in (1, 2, 3):
        folder = tmp_path / f"keep{keep}"
        best, checkpoint, model = _tied_run(folder, [0.5, 0.9, 0.6, 0.9, 0.9], keep)
        best_file = top_checkpoint_path(checkpoint)
        assert best.summary()["epoch"] == 2
        assert best_file.name == "best_epoch=2_accuracy=0.9000.safetensors", keep
        best.restore()
        saved = load_file(best_file)
        assert all(torch.equal(t, saved[k]) for k, t in model.state_dict().items())


def test_a_later_strictly_better_score_still_wins(tmp_path):
    best, checkpoint, _ = _tied_run(tmp_path, [0.9, 0.9, 0.95, 0.95], keep=2)
    assert best.summary()["epoch"] == 3 and "epoch=3_" in top_checkpoint_path(checkpoint).name
