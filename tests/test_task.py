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


def test_balanced_class_weights_become_bce_pos_weight_and_cross_entropy_weight():
    import pytest

    from ignite_cv.task import balanced_class_weights, task_from_config
    from ignite_cv.utils.errors import UserError

    assert balanced_class_weights([30, 10]) == [40 / 60, 40 / 20]
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(12, 1, generator=g), torch.randint(0, 2, (12,), generator=g)
    binary = task_from_config(_Options(class_weights="balanced"), 2, [30, 10])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.squeeze(1), y.float(), pos_weight=torch.tensor([3.0])
    )
    assert torch.allclose(binary.loss(logits, y), expected)
    assert binary.evaluation_loss(logits, y) == torch.nn.functional.binary_cross_entropy_with_logits(
        logits.squeeze(1), y.float()
    )  # validation and test stay unweighted
    many_logits, many_y = torch.randn(12, 3, generator=g), torch.randint(0, 3, (12,), generator=g)
    weighted = task_from_config(_Options(class_weights="balanced"), 3, [5, 10, 15])
    weights = torch.tensor([30 / 15, 30 / 30, 30 / 45])
    assert torch.allclose(
        weighted.loss(many_logits, many_y),
        torch.nn.functional.cross_entropy(many_logits, many_y, weight=weights),
    )
    with pytest.raises(UserError, match="class 1 has no training samples"):
        task_from_config(_Options(class_weights="balanced"), 2, [7, 0])


def test_focal_loss_is_torchvisions_for_one_logit_and_kornias_for_several():
    from kornia.losses import focal_loss
    from torchvision.ops import sigmoid_focal_loss

    from ignite_cv.task import task_from_config

    g = torch.Generator().manual_seed(2)
    logits, y = torch.randn(10, 1, generator=g), torch.randint(0, 2, (10,), generator=g)
    task = task_from_config(_Options(loss="focal", focal_gamma=1.5, focal_alpha=0.25), 2, [5, 5])
    expected = sigmoid_focal_loss(logits.squeeze(1), y.float(), alpha=0.25, gamma=1.5, reduction="mean")
    assert torch.allclose(task.loss(logits, y), expected)
    # balanced class weights give the binary focal loss alpha = n_neg / N
    balanced = task_from_config(_Options(loss="focal", class_weights="balanced"), 2, [30, 10])
    expected = sigmoid_focal_loss(logits.squeeze(1), y.float(), alpha=0.75, gamma=2.0, reduction="mean")
    assert torch.allclose(balanced.loss(logits, y), expected)
    many, targets = torch.randn(10, 4, generator=g), torch.randint(0, 4, (10,), generator=g)
    multi = task_from_config(_Options(loss="focal", focal_gamma=2.0), 4, [1, 1, 1, 1])
    expected = focal_loss(many, targets, None, 2.0, "none").sum() / 10
    assert torch.allclose(multi.loss(many, targets), expected)
    gamma_zero = task_from_config(_Options(loss="focal", focal_gamma=0.0), 4, [1, 1, 1, 1])
    assert torch.allclose(gamma_zero.loss(many, targets), torch.nn.functional.cross_entropy(many, targets))


class _Options:
    """The loss fields of a config."""

    def __init__(self, loss="ce", class_weights="none", focal_gamma=2.0, focal_alpha=-1.0):
        self.loss, self.class_weights, self.focal_gamma, self.focal_alpha = (
            loss,
            class_weights,
            focal_gamma,
            focal_alpha,
        )
        self.label_smoothing = 0.0
