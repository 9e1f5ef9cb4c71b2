"""Freezing: what a training step may and may not change in each phase."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ignite_cv.models import build_model
from ignite_cv.models.freezing import (
    all_trainable,
    backbone_blocks,
    check_mode,
    count_parameters,
    describe_trainable,
    freeze_backbone,
    head_parameters,
    set_train_mode,
    trainable_parameters,
    unfreeze_last,
)
from ignite_cv.utils.errors import UserError


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return build_model("resnet18", 3, (32, 32), 10)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _step(model: nn.Module, train_bn: bool = False) -> None:
    set_train_mode(model, train_bn)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _changed(before: dict[str, torch.Tensor], model: nn.Module) -> set[str]:
    after = model.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def test_blocks() -> None:
    assert [n for n, _ in backbone_blocks(_resnet18())] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    alex = build_model("alexnet_small", 1, (28, 28), 3)
    names = [n for n, _ in backbone_blocks(alex)]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    # Every backbone parameter lies in exactly one block, and no head parameter does.
    in_blocks = [id(p) for _, b in backbone_blocks(alex) for p in b.parameters()]
    assert len(in_blocks) == len(set(in_blocks))
    head = {id(p) for p in head_parameters(alex)}
    assert set(in_blocks) | head == {id(p) for p in alex.parameters()}


def test_extract_step_changes_only_the_head() -> None:
    model = _resnet18()
    freeze_backbone(model)
    before = _snapshot(model)
    _step(model)
    changed = _changed(before, model)
    assert changed == {"head.1.weight", "head.1.bias"}  # no backbone weight, no BatchNorm running stat
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.head.training


def test_train_bn_updates_frozen_running_stats() -> None:
    model = _resnet18()
    freeze_backbone(model)
    before = _snapshot(model)
    _step(model, train_bn=True)
    changed = _changed(before, model)
    assert "bn1.running_mean" in changed and "layer4.1.bn2.running_var" in changed
    assert not any(k.endswith((".weight", ".bias")) and not k.startswith("head.") for k in changed)


def test_unfreeze_last_two() -> None:
    model = _resnet18()
    freeze_backbone(model)
    assert unfreeze_last(model, 2) == ["layer3", "layer4"]
    before = _snapshot(model)
    _step(model)
    changed_modules = {k.split(".")[0] for k in _changed(before, model)}
    assert changed_modules == {"layer3", "layer4", "head"}
    info = describe_trainable(model)
    assert info["trainable_blocks"] == ["layer3", "layer4"]
    assert info["frozen_blocks"] == ["stem", "layer1", "layer2"]
    assert info["head_trainable"]
    total, trainable = count_parameters(model)
    expected = sum(p.numel() for m in (model.layer3, model.layer4, model.head) for p in m.parameters())
    assert (info["total_parameters"], info["trainable_parameters"]) == (total, trainable)
    assert trainable == expected and total > trainable


def test_unfreeze_is_absolute_and_all() -> None:
    model = build_model("alexnet_small", 3, (32, 32), 10)
    assert unfreeze_last(model, "all") == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert all(p.requires_grad for p in model.parameters())
    assert unfreeze_last(model, "1") == ["fc7"]  # earlier blocks are frozen again
    assert not model.features[0].weight.requires_grad
    assert model.classifier[4].weight.requires_grad and model.head[-1].weight.requires_grad


def test_unfreeze_too_many() -> None:
    with pytest.raises(UserError, match=r"--unfreeze 7 is more than resnet18's 5 blocks; use 1\.\.5 or all"):
        unfreeze_last(_resnet18(), 7)
    with pytest.raises(UserError, match="positive integer or all"):
        unfreeze_last(_resnet18(), "two")


def test_check_mode() -> None:
    model = _resnet18()
    check_mode(model, "scratch", "none", "all")
    check_mode(model, "finetune", "imagenet", "5")
    check_mode(model, "extract", "none", "all")  # allowed (a baseline); training warns about it
    with pytest.raises(UserError, match="use 1..5 or all"):
        check_mode(model, "finetune", "imagenet", "6")
    with pytest.raises(UserError, match="--mode scratch"):
        check_mode(build_model("tinyvgg", 3, (32, 32), 10), "extract", "x.safetensors", "all")


def test_wrapped_model() -> None:
    # DataParallel without GPUs stands in for DDP: the functions reach the wrapped module.
    wrapped = nn.DataParallel(_resnet18(), device_ids=[])
    freeze_backbone(wrapped)
    assert unfreeze_last(wrapped, 1) == ["layer4"]
    assert describe_trainable(wrapped)["trainable_blocks"] == ["layer4"]


def test_all_trainable_restores_flags() -> None:
    model = _resnet18()
    freeze_backbone(model)
    with all_trainable(model):
        assert all(p.requires_grad for p in model.parameters())
    assert not model.conv1.weight.requires_grad and model.head[-1].weight.requires_grad
