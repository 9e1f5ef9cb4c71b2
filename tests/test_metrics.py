import torch
from ignite.engine import Engine
from ignite.metrics import Accuracy

from ignite_cv.metrics import training_metrics
from ignite_cv.task import ClassificationTask


def _run(task: ClassificationTask, batches):
    engine = Engine(lambda e, batch: batch)
    for name, metric in training_metrics(torch.device("cpu")).items():
        metric.attach(engine, name)
    Accuracy(output_transform=lambda o: (o["scores"], o["y"])).attach(engine, "reference")
    return engine.run(batches).metrics


def test_training_accuracy_equals_ignites_accuracy_over_uneven_batches():
    g = torch.Generator().manual_seed(0)
    task = ClassificationTask(5)
    batches = []
    for n in (7, 13, 3):  # uneven: images count, not batches
        logits = torch.randn(n, 5, generator=g)
        batches.append(
            {
                "loss": torch.tensor(float(n)),
                "scores": task.class_scores(logits),
                "y": torch.randint(0, 5, (n,), generator=g),
            }
        )
    metrics = _run(task, batches)
    assert abs(metrics["accuracy"] - metrics["reference"]) < 1e-12
    assert 0 < metrics["accuracy"] < 1
    assert metrics["loss"] == (7 + 13 + 3) / 3  # the mean of the batch losses


def test_binary_training_accuracy_uses_the_single_logits_sign():
    task = ClassificationTask(2)
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    y = torch.tensor([1, 0, 0, 0])
    metrics = _run(task, [{"loss": torch.tensor(0.0), "scores": task.class_scores(logits), "y": y}])
    assert metrics["accuracy"] == 0.75
