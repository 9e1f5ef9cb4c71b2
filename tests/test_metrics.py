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


def _scripted_stream(num_classes: int, sizes, seed: int = 0, never_predicted: int | None = None):
    """Batches of step outputs (loss, scores, labels) with every class in the labels; the scores of
    class ``never_predicted`` are pushed down so that no sample is predicted as it."""
    g = torch.Generator().manual_seed(seed)
    task = ClassificationTask(num_classes)
    batches = []
    for n in sizes:
        logits = torch.randn(n, task.num_outputs, generator=g)
        y = torch.randint(0, num_classes, (n,), generator=g)
        if task.binary:
            logits = logits + (2 * y[:, None] - 1) * 0.7  # informative, still with mistakes
        else:
            logits[torch.arange(n), y] += 1.0
            if never_predicted is not None:
                logits[:, never_predicted] -= 100.0
        batches.append({"loss": torch.rand((), generator=g), "scores": task.class_scores(logits), "y": y})
    return batches


@pytest.mark.parametrize(
    ("num_classes", "fold_every", "never_predicted"), [(4, 2, 3), (4, 32, None), (2, 3, None)]
)
def test_full_training_metrics_equal_scikit_learns_on_a_scripted_stream(
    num_classes, fold_every, never_predicted
):
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    batches = _scripted_stream(num_classes, (9, 16, 5, 12, 7), never_predicted=never_predicted)
    engine = Engine(lambda e, batch: batch)
    metric = training_metrics(torch.device("cpu"), num_classes, "full")["training"]
    metric.fold_every = fold_every
    metric.attach(engine, "training")
    metrics = engine.run(batches).metrics

    scores = torch.cat([b["scores"] for b in batches])
    y = torch.cat([b["y"] for b in batches]).numpy()
    predicted = scores.argmax(dim=1).numpy()
    labels = list(range(num_classes))
    p, r, f, _ = precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-12)
    assert metrics["precision"].tolist() == pytest.approx(p.tolist(), abs=1e-12)
    assert metrics["recall"].tolist() == pytest.approx(r.tolist(), abs=1e-12)
    assert metrics["f1"].tolist() == pytest.approx(f.tolist(), abs=1e-12)
    macro = precision_recall_fscore_support(y, predicted, labels=labels, average="macro", zero_division=0)
    assert (metrics["precision_macro"], metrics["recall_macro"], metrics["f1_macro"]) == pytest.approx(
        macro[:3], abs=1e-12
    )
    assert metrics["confusion_matrix"].tolist() == confusion_matrix(y, predicted, labels=labels).tolist()
    probs = scores.softmax(dim=1).numpy()
    expected_auc = (
        roc_auc_score(y, probs[:, 1]) if num_classes == 2 else roc_auc_score(y, probs, multi_class="ovr")
    )
    assert metrics["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)
    if never_predicted is not None:  # the zero-division case is exercised
        assert metrics["precision"][never_predicted] == 0.0 and metrics["recall"][never_predicted] == 0.0
    assert 0 < metrics["f1_macro"] < 1


def test_full_training_metrics_start_afresh_each_epoch():
    batches = _scripted_stream(3, (6, 6, 6, 6))
    engine = Engine(lambda e, batch: batch)
    metric = training_metrics(torch.device("cpu"), 3, "full")["training"]
    metric.attach(engine, "training")
    epochs = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epochs.append(dict(e.state.metrics)))
    engine.run(batches, max_epochs=2, epoch_length=2)  # epoch 1: batches 0-1, epoch 2: batches 2-3
    assert [int(m["confusion_matrix"].sum()) for m in epochs] == [12, 12]
    second = torch.cat([b["y"] for b in batches[2:]])
    assert epochs[1]["confusion_matrix"].sum(dim=1).tolist() == torch.bincount(second, minlength=3).tolist()


def test_training_metric_levels_are_checked():
    with pytest.raises(ValueError, match="level must be one of"):
        training_metrics(torch.device("cpu"), 3, "everything")
    with pytest.raises(ValueError, match="need num_classes"):
        training_metrics(torch.device("cpu"), None, "full")
