import pytest
import torch
from ignite.engine import Engine, Events
from ignite.metrics import Accuracy

from ignite_cv.metrics import training_metrics
from ignite_cv.task import ClassificationTask


def _run(task: ClassificationTask, batches, fold_every: int | None = None):
    engine = Engine(lambda e, batch: batch)
    for name, metric in training_metrics(torch.device("cpu")).items():
        if fold_every is not None:
            metric.fold_every = fold_every
        metric.attach(engine, name)
    Accuracy(output_transform=lambda o: (o["scores"], o["y"])).attach(engine, "reference")
    return engine.run(batches).metrics


@pytest.mark.parametrize("fold_every", [None, 1, 2])
def test_training_accuracy_equals_ignites_accuracy_over_uneven_batches(fold_every):
    g = torch.Generator().manual_seed(0)
    task = ClassificationTask(5)
    batches = []
    for n in (7, 13, 3):  # uneven: images count, not batches; with fold_every 2, one batch is left over
        logits = torch.randn(n, 5, generator=g)
        batches.append(
            {
                "loss": torch.tensor(float(n)),
                "scores": task.class_scores(logits),
                "y": torch.randint(0, 5, (n,), generator=g),
            }
        )
    metrics = _run(task, batches, fold_every)
    assert abs(metrics["accuracy"] - metrics["reference"]) < 1e-12
    assert 0 < metrics["accuracy"] < 1
    assert metrics["loss"] == (7 + 13 + 3) / 3  # the mean of the batch losses


def test_binary_training_accuracy_uses_the_single_logits_sign():
    task = ClassificationTask(2)
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    y = torch.tensor([1, 0, 0, 0])
    metrics = _run(task, [{"loss": torch.tensor(0.0), "scores": task.class_scores(logits), "y": y}])
    assert metrics["accuracy"] == 0.75


def test_each_epoch_counts_only_its_own_batches():
    right = {"loss": torch.tensor(1.0), "scores": torch.eye(3), "y": torch.arange(3)}
    wrong = {"loss": torch.tensor(3.0), "scores": torch.eye(3), "y": torch.tensor([1, 2, 0])}
    engine = Engine(lambda e, batch: batch)
    metric = training_metrics(torch.device("cpu"))["training"]
    metric.fold_every = 2
    metric.attach(engine, "training")
    epochs = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epochs.append(dict(e.state.metrics)))
    engine.run([right, right, right, wrong, wrong, wrong], max_epochs=1, epoch_length=3)
    engine.run([wrong, wrong, wrong], max_epochs=2, epoch_length=3)
    assert epochs[0] == {"loss": 1.0, "accuracy": 1.0}
    assert epochs[1] == {"loss": 3.0, "accuracy": 0.0}


def _outputs(n_batches: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "loss": torch.rand((), generator=g),
            "scores": torch.randn(5, 4, generator=g),
            "y": torch.arange(5) % 4,
        }
        for _ in range(n_batches)
    ]


@pytest.mark.parametrize("cut", [3, 32, 37, 70])
def test_a_partial_epoch_saved_and_restored_gives_the_uninterrupted_epoch_bitwise(cut):
    from ignite_cv.metrics import TrainingLossAccuracy

    outputs = _outputs(75)
    whole = TrainingLossAccuracy()
    whole.reset()
    for output in outputs:
        whole.update(output)
    first = TrainingLossAccuracy()
    first.reset()
    for output in outputs[:cut]:
        first.update(output)
    saved = {k: v.clone() for k, v in first.partial_state().items()}
    resumed = TrainingLossAccuracy()
    resumed.reset()
    resumed.load_partial_state(saved)
    twice = TrainingLossAccuracy()  # a second kill: a state taken from the resumed metric
    twice.reset()
    for output in outputs[cut : cut + 2]:
        resumed.update(output)
    twice.load_partial_state(resumed.partial_state())
    for output in outputs[cut + 2 :]:
        twice.update(output)
    assert twice.compute() == whole.compute()  # floats compared exactly


def test_the_monitorable_metrics_are_the_evaluations_scalar_metrics():
    from ignite_cv.metrics import MATRIX_METRICS, MONITORABLE_METRICS, evaluation_metrics

    metrics = evaluation_metrics(ClassificationTask(11), torch.device("cpu"))
    vectors = {"precision", "recall", "f1", *MATRIX_METRICS}
    assert set(MONITORABLE_METRICS) == set(metrics) - vectors
