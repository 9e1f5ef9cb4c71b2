"""Prune and fine-tune on the training loop: a copy of the model is pruned, fine-tuned and saved."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ignite_cv.config import TrainConfig
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.prune.workflow import prune_after_training
from ignite_cv.task import ClassificationTask
from ignite_cv.weights import load_model
from tests.prune.prune_models import conv_linear_widths, model_and_card


def _tiny_bundle():
    from ignite_cv.data.splits import DataBundle, Split

    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        labels = torch.arange(n) % 4
        images = torch.randint(0, 60, (n, 1, 8, 8), generator=generator, dtype=torch.uint8)
        images[:, :, :4, :4] += (labels * 60).to(torch.uint8).view(-1, 1, 1, 1)  # learnable signal
        return Split(labels=labels, images=images)

    return DataBundle("tiny", split(96), split(32), split(32), ["a", "b", "c", "d"], 1, (8, 8))


def test_prune_after_training_prunes_a_copy_into_the_run_folder(tmp_path):
    model, card = model_and_card("tinyvgg")
    for p in model.block1.parameters():
        p.requires_grad_(False)
    widths = conv_linear_widths(model)
    config = TrainConfig(
        lr=1e-2, batch_size=32, workers=0, prune_after=0.5, prune_finetune_epochs=1, prune_importance="taylor"
    )
    config.log_every = 5
    summary = prune_after_training(
        model,
        card,
        _tiny_bundle(),
        ClassificationTask(4),
        BatchPipeline(nn.Identity()),
        torch.device("cpu"),
        tmp_path,
        config,
        say=None,
    )
    assert conv_linear_widths(model) == widths  # the trained model itself is left alone
    assert summary["pruning"]["importance"] == "taylor" and summary["finetune"]["epochs"] == 1
    assert summary["finetune"]["lr"] == pytest.approx(1e-3)  # --prune-lr 0 → lr / 10
    folder = tmp_path / "pruning"
    assert {"pruned.safetensors", "pruning.json", "pruning.md", "finetune_metrics.jsonl"} <= {
        p.name for p in folder.iterdir()
    }
    reloaded, _ = load_model(folder / "pruned.safetensors")
    assert reloaded.block1[0].out_channels == 4
    assert summary["after"]["macs"] < summary["before"]["macs"]
    assert "test accuracy" in (folder / "pruning.md").read_text()
