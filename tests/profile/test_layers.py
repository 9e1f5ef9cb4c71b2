"""Per-layer summary: totals equal count_macs_params and the parameter count; shapes, states, mode kept."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.models import build_model
from ignite_cv.models.freezing import freeze_backbone, unfreeze_last
from ignite_cv.profile.layers import format_layer_table, layer_table, model_summary_text
from ignite_cv.profile.model import count_macs_params
from ignite_cv.prune.core import prune
from ignite_cv.utils.modules import count_params

CASES = [
    ("mlp", (1, 8, 8), 10),
    ("tinyvgg", (1, 28, 28), 10),
    ("resnet18", (3, 32, 32), 2),
    ("alexnet_small", (3, 32, 32), 10),
]


def _check_totals(model, input_shape) -> list:
    rows = layer_table(model, input_shape)
    macs, params = count_macs_params(model, torch.zeros(1, *input_shape))
    total, trainable = count_params(model)
    root = rows[0]
    assert (root.name, root.depth) == ("", 0)
    assert root.macs == macs
    assert root.params == params == total
    assert root.trainable == trainable
    assert sum(r.own_params for r in rows) == total  # no parameter counted twice
    assert sum(r.macs for r in rows if r.is_leaf) == macs  # leaves add up to the total
    assert len(rows) == len(list(model.modules()))
    return rows


@pytest.mark.parametrize(("name", "input_shape", "outputs"), CASES)
def test_totals_equal_count_macs_params(name, input_shape, outputs):
    model = build_model(name, input_shape[0], input_shape[1:], outputs)
    model.train()
    rows = _check_totals(model, input_shape)
    assert model.training  # the summary's eval-mode pass restored the mode
    assert rows[0].output_shape == (outputs,)


def test_pruned_tinyvgg_shapes_follow_the_pruning():
    model = build_model("tinyvgg", 1, (28, 28), 10, hidden_units=16)
    prune(model, torch.zeros(1, 1, 28, 28), ratio=0.5)
    rows = {r.name: r for r in _check_totals(model, (1, 28, 28))}
    assert rows["block1.0"].output_shape == (8, 28, 28)  # 16 channels halved
    assert rows["block1.0"].params == 8 * 1 * 3 * 3
    assert rows["classifier.2"].params == (8 * 7 * 7) * 10 + 10


def test_frozen_backbone_states_and_text():
    model = build_model("resnet18", 3, (32, 32), 2)
    freeze_backbone(model)
    unfreeze_last(model, 1)
    rows = {r.name: r for r in _check_totals(model, (3, 32, 32))}
    assert (rows["conv1"].state, rows["layer4"].state, rows[""].state, rows["relu"].state) == (
        "frozen",
        "trainable",
        "partial",
        "",
    )
    assert rows["layer1.0.relu"].calls == 2  # a BasicBlock applies its ReLU twice
    assert rows["conv1"].output_shape == (64, 16, 16)

    full = format_layer_table(list(rows.values()))
    short = format_layer_table(list(rows.values()), max_depth=1)
    assert "layer1.0.conv1" in full and "layer1.0.conv1" not in short
    assert "ReLU ×2" in full
    total_line = f"total: {rows[''].params:,} parameters ({rows[''].trainable:,} trainable, "
    assert total_line in short and f"{rows[''].macs:,} MACs per image" in short
    table_lines = [line for line in short.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 1 + sum(1 for r in rows.values() if r.depth <= 1)  # header + rows

    text = model_summary_text(model, (3, 32, 32), max_depth=1)
    assert text.startswith("ResNetClassifier on input 3×32×32 (one image)\n")
