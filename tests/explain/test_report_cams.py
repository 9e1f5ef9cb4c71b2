"""CAMs for the run report: the worst mistakes and a seeded sample of right answers, files and TensorBoard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ignite_cv.explain.report_cams import (
    CORRECT_FILE,
    WRONG_FILE,
    check_explain_options,
    select_images,
    write_report_cams,
)
from ignite_cv.models import build_model
from ignite_cv.models.freezing import freeze_backbone, set_train_mode
from ignite_cv.utils.errors import UserError
from tests.explain.patterns import meanstd_card


def test_the_most_confident_mistakes_come_first_and_the_sample_is_seeded():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    p1 = np.array(
        [0.6, 0.9, 0.2, 0.8, 0.7, 0.1, 0.3, 0.95]
    )  # wrong: 0 (0.6), 1 (0.9), 2 (0.8), 4 (0.7), 5 (0.9)
    probs = np.stack([1 - p1, p1], axis=1)
    wrong, correct = select_images(labels, probs, 3, seed=0)
    assert wrong.tolist() == [1, 5, 2]  # p(pred) 0.9, 0.9, 0.8; ties by index
    assert correct.tolist() == [3, 6, 7]  # all three right answers
    samples = {tuple(select_images(labels, probs, 2, seed=s)[1].tolist()) for s in range(20)}
    assert samples <= {(3, 6), (3, 7), (6, 7)} and len(samples) > 1  # two of the three, by the seed
    assert (
        select_images(labels, probs, 2, seed=5)[1].tolist()
        == select_images(labels, probs, 2, seed=5)[1].tolist()
    )


def test_grids_are_written_and_sent_to_tensorboard_and_a_frozen_model_stays_as_it_was(tmp_path):
    torch.manual_seed(0)
    card = meanstd_card("resnet18", 3, 32, ["cat", "dog", "eel"])
    model = build_model("resnet18", 3, (32, 32), 3)
    freeze_backbone(model)
    set_train_mode(model)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(12) % 3
    probs = torch.softmax(torch.randn(12, 3), dim=1)
    from tests.test_report import RecordingWriter

    writer = RecordingWriter(tmp_path / "tb")
    result = write_report_cams(
        model, card, images, labels, probs, tmp_path, count=2, tb_writer=writer, global_step=7
    )
    wrong, correct = select_images(labels.numpy(), probs.numpy(), 2, 0)
    assert (
        result
        == {
            "method": "gradcam",
            "target_layer": "layer2",  # at 32 px: layer4 is 1×1, layer3 2×2
            "wrong": wrong.tolist(),
            "correct": correct.tolist(),
            "files": [WRONG_FILE, CORRECT_FILE][: 1 + (len(correct) > 0)],
        }
    )
    assert (tmp_path / WRONG_FILE).stat().st_size > 1000
    logged = writer.images()  # TensorBoard shows the PNG files, byte for byte, at the step
    tags = {"test/cams_wrong": WRONG_FILE, "test/cams_correct": CORRECT_FILE}
    assert logged == {
        tag: (7, (tmp_path / file).read_bytes()) for tag, file in tags.items() if file in result["files"]
    }
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags


def test_nothing_is_drawn_when_off_or_for_a_model_without_maps(tmp_path):
    card = meanstd_card("mlp", 1, 8, ["a", "b", "c"])
    model = build_model("mlp", 1, (8, 8), 3)
    images = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    probs = torch.full((3, 3), 1 / 3)
    result = write_report_cams(model, card, images, torch.tensor([0, 1, 2]), probs, tmp_path)
    assert result["skipped"].startswith("MLP has no layer with a spatial feature map")
    off = write_report_cams(model, card, images, torch.tensor([0, 1, 2]), probs, tmp_path, method="none")
    assert off == {"skipped": "CAMs are off (--explain none or --explain-images 0)"}
    assert list(tmp_path.iterdir()) == []


def test_options_are_checked_before_training():
    check_explain_options("none", 8)
    check_explain_options("scorecam", 0)
    with pytest.raises(UserError, match="unknown CAM method 'cam'"):
        check_explain_options("cam", 8)
    with pytest.raises(UserError, match="--explain-images must be >= 0"):
        check_explain_options("gradcam", -1)
