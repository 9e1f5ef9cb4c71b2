"""probability_metrics: the evaluation's metric set for given probabilities; split_probabilities' order."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from ignite_cv.data.loaders import build_loader
from ignite_cv.data.splits import Split
from ignite_cv.evaluation import checkpoint_center_crop, probability_metrics, split_probabilities
from ignite_cv.metrics import evaluation_metrics
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.task import ClassificationTask
from ignite_cv.weights import ModelCard


def _metrics_of_logits(task, logits, labels):
    engine = Engine(lambda _, b: {"logits": b[0], "scores": task.class_scores(b[0]), "y": b[1]})
    for name, metric in evaluation_metrics(task, torch.device("cpu")).items():
        metric.attach(engine, name)
    engine.run([(logits, labels)], max_epochs=1)
    return engine.state.metrics


@pytest.mark.parametrize("classes", [2, 4])
def test_probability_metrics_equal_the_evaluators_on_the_same_predictions(classes):
    torch.manual_seed(0)
    task = ClassificationTask(classes)
    logits = torch.randn(50, task.num_outputs) * 3
    labels = torch.randint(0, classes, (50,))
    expected = _metrics_of_logits(task, logits, labels)
    got = probability_metrics(task.probabilities(logits), labels, task, torch.device("cpu"))
    assert torch.equal(got["confusion_matrix"], expected["confusion_matrix"])
    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"):
        assert float(got[name]) == float(expected[name]), name
    assert float(got["loss"]) == pytest.approx(float(expected["loss"]), rel=1e-5)


def test_split_probabilities_are_in_the_splits_order():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    split = Split(labels=torch.arange(10) % 3, images=torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8))
    loader = build_loader(split, batch_size=4, train=False, device=torch.device("cpu"), seed=0)
    pipeline = BatchPipeline(build_normalizer({"kind": "none"}))
    task = ClassificationTask(3)
    metrics, probs, labels, images = split_probabilities(
        model, task, pipeline, torch.device("cpu"), loader, 10
    )
    assert torch.equal(labels, split.labels) and images is None
    with torch.inference_mode():
        assert torch.allclose(probs, model(pipeline(split.images)).softmax(dim=1), atol=1e-6)
    assert metrics["confusion_matrix"].sum() == 10


def test_checkpoint_center_crop_comes_from_the_card_then_the_run_then_the_flag(tmp_path):
    card = ModelCard("tinyvgg", {}, ["a", "b"], 1, [8, 8], 1, {"kind": "none"})
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text('{"center_crop": true}')
    assert checkpoint_center_crop(run / "checkpoints" / "x.safetensors", card, False) is True
    assert checkpoint_center_crop(tmp_path / "x.safetensors", card, True) is True
    assert checkpoint_center_crop(tmp_path / "x.safetensors", card, False) is False
    card.extra["center_crop"] = False
    assert checkpoint_center_crop(run / "checkpoints" / "x.safetensors", card, True) is False
