import torch

from ignite_cv.task import ClassificationTask


def test_binary_task_uses_one_logit_and_consistent_scores():
    task = ClassificationTask(2)
    logits = torch.tensor([[-2.0], [0.5], [3.0]])
    y = torch.tensor([0, 1, 1])
    assert task.num_outputs == 1
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    assert torch.allclose(task.loss(logits, y), expected)
    probs = task.probabilities(logits)
    assert torch.allclose(probs[:, 1], torch.sigmoid(logits.squeeze(1)))
    assert task.class_scores(logits).argmax(1).tolist() == [0, 1, 1]


def test_multiclass_task_uses_cross_entropy_with_label_smoothing():
    task = ClassificationTask(4, label_smoothing=0.1)
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert task.num_outputs == 4
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.allclose(task.loss(logits, y), expected)


def test_label_smoothing_changes_the_training_loss_only():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    smoothed = ClassificationTask(4, label_smoothing=0.1)
    plain = torch.nn.functional.cross_entropy(logits, targets)
    assert smoothed.evaluation_loss(logits, targets) == plain
    assert abs(smoothed.loss(logits, targets) - plain) > 1e-3
