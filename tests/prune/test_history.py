"""A pruning history replayed on a fresh model gives the pruned model, in any process; edits are refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ignite_cv.prune.core import example_input_for, prune, save_pruned
from ignite_cv.prune.history import HISTORY_KEY, apply_pruning_history
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import ModelCard, load_model, save_model
from tests.prune.prune_models import model_and_card

REPO = Path(__file__).resolve().parents[2]


def test_resnet18_at_ratio_half_reloads_in_a_fresh_process(tmp_path):
    model, card = model_and_card("resnet18")
    result = prune(model, example_input_for(card), ratio=0.5)
    model.eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    save_pruned(tmp_path / "resnet18-pruned.safetensors", model, card, result)
    save_file({"x": x, "y": expected}, str(tmp_path / "io.safetensors"))
    del model
    script = textwrap.dedent(
        f"""
        import torch
        from safetensors.torch import load_file
        from ignite_cv.weights import load_model
        model, card = load_model({str(tmp_path / "resnet18-pruned.safetensors")!r})
        io = load_file({str(tmp_path / "io.safetensors")!r})
        with torch.no_grad():
            out = model(io["x"])
        print(float((out - io["y"]).abs().max()), model.layer1[0].conv1.out_channels)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    max_diff, width = done.stdout.split()
    assert float(max_diff) < 1e-5 and int(width) == 32


def test_an_edited_history_is_refused_with_a_one_line_error(tmp_path):
    model, card = model_and_card("tinyvgg")
    with pytest.raises(UserError, match="does not fit"):
        apply_pruning_history(model, [["block9.0", True, [0, 1]]], example_input_for(card))
    # A card carrying a history for another architecture fails the same way when loaded.
    bad = ModelCard(
        "tinyvgg",
        card.arch_args,
        card.class_names,
        1,
        [8, 8],
        4,
        {"kind": "none"},
        extra={HISTORY_KEY: [["layer1.0.conv1", True, [0]]]},
    )
    save_model(tmp_path / "bad.safetensors", model, bad)
    with pytest.raises(UserError, match="does not fit"):
        load_model(tmp_path / "bad.safetensors")
    assert set(load_file(str(tmp_path / "bad.safetensors"))) == set(model.state_dict())
