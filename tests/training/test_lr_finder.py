"""The LR finder: Ignite's range test on our trainer leaves the weights and the optimizer exactly as
they were, the run's start (freezing, RNG streams, augmentation) is put back, and ``--lr-find apply``
trains as a run given the suggested LR does."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ignite_cv.data.loaders import TensorLoader
from ignite_cv.engine import StepOptions, create_trainer
from ignite_cv.models import build_model
from ignite_cv.phases import make_optimizer
from ignite_cv.pipeline.augment import build_augmentation
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask
from ignite_cv.training.fit import fit
from ignite_cv.training.lr_finder import PLOT_FILE, RESULT_FILE, find_lr, lr_range_test
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import load_recipe


def _data(n=96, size=8, channels=1, classes=3):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 80, (n, channels, size, size), generator=g, dtype=torch.uint8)
    images[:, :, : size // 2] += (labels * 60).to(torch.uint8)[:, None, None, None]
    return TensorLoader(images, labels, 16, shuffle=True, seed=0, drop_last=True)


def _state(model, optimizer):
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    strides = {k: v.stride() for k, v in model.state_dict().items()}
    return weights, strides, copy.deepcopy(optimizer.state_dict())


def test_the_range_test_leaves_weights_and_optimizer_exactly_as_they_were():
    task = ClassificationTask(3)
    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4).to(memory_format=torch.channels_last)
    step = StepOptions(channels_last=True)
    pipeline = BatchPipeline(nn.Identity())
    optimizer = make_optimizer("adamw", model.parameters(), 1e-3, 0.01, 0.9)  # fused on the CPU
    assert optimizer.param_groups[0]["fused"] is True
    loader = _data()
    create_trainer(model, optimizer, task, pipeline, torch.device("cpu"), step).run(loader, max_epochs=1)
    weights, strides, optim = _state(model, optimizer)  # the optimizer has state (steps, moments)
    trainer = create_trainer(model, optimizer, task, pipeline, torch.device("cpu"), step)
    result = lr_range_test(trainer, model, optimizer, loader, iterations=12, start_lr=1e-5, end_lr=1.0)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in weights.items())
    assert {k: v.stride() for k, v in after.items()} == strides  # channels_last kept
    now = optimizer.state_dict()
    assert now["param_groups"] == optim["param_groups"]
    assert now["state"].keys() == optim["state"].keys() and len(now["state"]) == len(list(model.parameters()))
    for index, buffers in optim["state"].items():
        assert all(torch.equal(now["state"][index][k], v) for k, v in buffers.items())
    growth = (1.0 / 1e-5) ** (1 / 12)  # exponential from 1e-5 to 1.0 in 12 steps
    assert 12 <= len(result.lrs) <= 13
    assert result.lrs[:3] == pytest.approx([1e-5 * growth, 1e-5 * growth**2, 1e-5 * growth**3])
    assert all(loss is not None for loss in result.losses)


def _transfer_config(**overrides):
    cls = load_recipe("resnet_finetune").ResNetFinetuneRecipe
    values = dict(model="alexnet_small", weights="none", mode="extract", augment="flip", lr_find="suggest")
    values.update(lr_find_iterations=10, lr_find_start=1e-6, lr_find_end=1.0, channels=1, image_size=8)
    return cls(**{**values, **overrides})


def test_find_lr_puts_back_the_freezing_rng_and_augmentation_and_writes_its_files(tmp_path):
    config = _transfer_config(lr_find_iterations=20)  # 10 steps leave some initial weights without a U
    task = ClassificationTask(3)
    torch.manual_seed(0)  # the initial weights, whatever ran before (the curve depends on them)
    model = build_model("alexnet_small", 1, (8, 8), task.num_outputs)
    augmentation = build_augmentation(config, 1, (8, 8))
    pipeline = BatchPipeline(nn.Identity(), augmentation)
    pipeline(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), augment=True)  # the generator exists and moved
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    aug_state = {k: v.clone() for k, v in augmentation.get_rng_state().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    said = []
    back = find_lr(config, model, task, pipeline, torch.device("cpu"), _data(), None, tmp_path, said.append)
    assert back is config  # suggest: the config is unchanged
    assert all(p.requires_grad for p in model.parameters())  # the extract phase froze the backbone
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(augmentation.get_rng_state()[k], v) for k, v in aug_state.items())
    assert model.training  # modes are as they were
    record = json.loads((tmp_path / RESULT_FILE).read_text())
    assert (record["phase"], record["option"], record["configured_lr"]) == (
        "extract",
        "head_lr",
        config.head_lr,
    )
    assert record["applied"] is False and len(record["lrs"]) == len(record["losses"]) >= 10
    assert (tmp_path / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    # whether 20 steps on random data give a U-shaped curve depends on the initial weights; either way
    # the line names the phase and the flag (or says there is no suggestion), and nothing else changed
    assert said[0].startswith("LR finder (extract phase): suggested --head-lr ") or (
        said[0].startswith("warning: the LR finder has no suggestion") and record["suggestion"] is None
    ), said[0]


def test_bad_ranges_and_a_missing_suggestion_are_one_line_errors(tmp_path):
    task = ClassificationTask(3)
    model = build_model("mlp", 1, (8, 8), 3, hidden_sizes=[8], batch_norm=False, dropout=0.0)
    pipeline = BatchPipeline(nn.Identity())
    config = load_recipe("mlp").MLPRecipe(lr_find="apply", lr_find_start=1.0, lr_find_end=0.1)
    with pytest.raises(UserError, match="--lr-find-start 1 is not below --lr-find-end 0.1"):
        find_lr(config, model, task, pipeline, torch.device("cpu"), _data(), None, None, print)
    diverging = load_recipe("mlp").MLPRecipe(
        lr_find="apply", lr_find_start=1e3, lr_find_end=1e6, lr_find_iterations=6
    )
    with pytest.raises(UserError, match="the LR finder has no suggestion .*give --lr yourself"):
        find_lr(diverging, model, task, pipeline, torch.device("cpu"), _data(), None, None, print)


def test_apply_trains_exactly_as_a_run_given_the_suggested_lr(tmp_path):
    common = dict(
        dataset="digits", epochs=1, hidden_sizes=(16,), deterministic=True, workers=0, image_grid_every=0
    )
    common.update(live_curves=False, output_dir=str(tmp_path), lr_find_iterations=15)
    cls = load_recipe("mlp").MLPRecipe
    found = fit(cls(**common, lr_find="apply", run_name="found"))
    record = json.loads((tmp_path / "found" / RESULT_FILE).read_text())
    assert record["applied"] is True and record["suggestion"] != cls().lr
    saved = json.loads((tmp_path / "found" / "config.json").read_text())
    assert (saved["lr"], saved["lr_find"]) == (record["suggestion"], "apply")
    given = fit(cls(**common, lr=record["suggestion"], run_name="given"))
    assert found["test"] == given["test"]
    a, b = load_file(found["best_checkpoint"]), load_file(given["best_checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
