"""A run's two-class decisions: the threshold comes from the validation split only; what cards record."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ignite_cv.binary import youden_threshold
from ignite_cv.data.loaders import TensorLoader
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.engine import StepOptions
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask
from ignite_cv.training.decisions import card_extra, decide_threshold, put_positive_last
from ignite_cv.utils.errors import UserError


class _PixelLogit(nn.Module):
    """logit = logit(pixel value / 255): an image's single pixel is its positive probability."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.flatten(1)[:, :1].clamp(1e-4, 1 - 1e-4)
        return torch.log(p / (1 - p))


def _scored(probabilities: list[float], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.tensor([round(p * 255) for p in probabilities], dtype=torch.uint8).view(-1, 1, 1, 1)
    return pixels, torch.tensor(labels)


def test_youden_is_chosen_on_the_validation_split_not_the_test_split():
    # validation: positives score >= 0.6 ... the best cut is 0.6; test: its best cut would be 0.3
    val_images, val_labels = _scored([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9], [0, 0, 0, 0, 1, 1, 1, 1])
    test_images, test_labels = _scored([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9], [0, 0, 1, 1, 1, 1, 1, 1])
    chosen = decide_threshold(
        SimpleNamespace(threshold="youden"),
        _PixelLogit(),
        ClassificationTask(2),
        BatchPipeline(nn.Identity()),
        torch.device("cpu"),
        TensorLoader(val_images, val_labels, 3, shuffle=False),
        StepOptions(),
    )
    test_choice = youden_threshold(test_labels.numpy(), test_images.flatten().float().numpy() / 255)
    assert chosen == pytest.approx(round(0.6 * 255) / 255, abs=1e-3)
    assert test_choice == pytest.approx(round(0.3 * 255) / 255, abs=1e-3)
    fixed = decide_threshold(
        SimpleNamespace(threshold="0.25"), None, ClassificationTask(2), None, None, None, None
    )
    assert fixed == 0.25
    assert (
        decide_threshold(
            SimpleNamespace(threshold="youden"), None, ClassificationTask(3), None, None, None, None
        )
        is None
    )


def _bundle(val_labels: list[int]) -> DataBundle:
    def split(labels):
        labels = torch.tensor(labels)
        return Split(labels=labels, images=torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8))

    return DataBundle(
        "b", split([0, 1, 1]), split(val_labels), split([0, 1]), ["normal", "lesion"], 1, (2, 2)
    )


def test_the_positive_class_and_the_threshold_are_checked_before_the_run_folder(capsys):
    flipped = put_positive_last(SimpleNamespace(positive_class="normal", threshold="0.5"), _bundle([0, 1]))
    assert flipped.class_names == ["lesion", "normal"] and flipped.train.labels.tolist() == [1, 0, 0]
    assert "positive class: 'normal'" in capsys.readouterr().out
    with pytest.raises(
        UserError,
        match="--threshold youden needs both classes in the validation split, which holds only 'normal'",
    ):
        put_positive_last(SimpleNamespace(positive_class="", threshold="youden"), _bundle([0, 0]))


def test_every_checkpoint_card_records_the_decision():
    config = SimpleNamespace(center_crop=True, threshold="0.3")
    assert card_extra(config, ["normal", "lesion"]) == {
        "center_crop": True,
        "positive_class": "lesion",
        "threshold": 0.3,
    }
    assert card_extra(SimpleNamespace(center_crop=False, threshold="youden"), ["a", "b"]) == {
        "center_crop": False,
        "positive_class": "b",
    }  # youden: only the reported model gets its threshold, after training
    assert card_extra(config, ["a", "b", "c"]) == {"center_crop": True}
