"""Freezing and unfreezing a pretrained backbone for ``--mode extract`` and ``--mode finetune``.

A model that supports transfer learning has a ``head`` module and a ``backbone_blocks()`` method listing
its blocks from the input to the output (ResNet: stem, layer1 … layer4; AlexNet: conv1 … conv5, fc6,
fc7). The training orchestration calls, per phase:

* ``extract``: :func:`freeze_backbone` once; only the head trains.
* ``finetune``: phase 1 :func:`freeze_backbone`, phase 2 :func:`unfreeze_last` (``--unfreeze N|all``).

and :func:`set_train_mode` instead of ``model.train()``, so BatchNorm layers whose parameters are all
frozen stay in eval mode: they keep their pretrained running statistics instead of drifting towards the
new data's while their scale and shift cannot follow (``--train-bn`` turns this off).

``requires_grad`` is set on the parameters themselves, so the functions accept a model wrapped in
DistributedDataParallel, DataParallel or ``torch.compile``. DDP registers its gradient hooks when it is
built: after every (un)freeze, re-wrap the model and rebuild the optimizer and scheduler over
:func:`trainable_parameters`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ignite_cv.models.options import MODES
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

Unfreeze = int | Literal["all"]


def _arch(model: nn.Module) -> str:
    return getattr(model, "arch_name", type(model).__name__)


def backbone_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of each backbone block, from the input to the output."""
    inner = unwrap(model)
    if not hasattr(inner, "backbone_blocks"):
        raise UserError(
            f"{_arch(inner)} has no pretrained backbone to freeze or unfreeze",
            "use --mode scratch, or a resnet18/34/50, alexnet or alexnet_small model",
        )
    return inner.backbone_blocks()


def head_module(model: nn.Module) -> nn.Module:
    inner = unwrap(model)
    head = getattr(inner, "head", None)
    if not isinstance(head, nn.Module):
        raise UserError(
            f"{_arch(inner)} has no separate head to train alone",
            "use --mode scratch, or a resnet18/34/50, alexnet or alexnet_small model",
        )
    return head


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the new classification head (always trainable in every mode)."""
    return list(head_module(model).parameters())


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad``: what an optimizer built for the current phase gets."""
    return [p for p in model.parameters() if p.requires_grad]


def freeze_backbone(model: nn.Module) -> None:
    """Freeze every parameter except the head's (``--mode extract``, finetune phase 1)."""
    head = head_module(model)
    backbone_blocks(model)  # a model without blocks cannot be fine-tuned later either: fail now
    for param in unwrap(model).parameters():
        param.requires_grad_(False)
    for param in head.parameters():
        param.requires_grad_(True)


def parse_unfreeze(value: int | str) -> Unfreeze:
    """``--unfreeze`` as a positive block count or ``"all"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "all":
            return "all"
        if not text.lstrip("-").isdigit():
            raise UserError(
                f"--unfreeze {value!r} is not a number of blocks", "use a positive integer or all"
            )
        value = int(text)
    if value < 1:
        raise UserError(f"--unfreeze {value} unfreezes nothing", "use a positive integer or all")
    return value


def unfreeze_last(model: nn.Module, n: int | str) -> list[str]:
    """Make exactly the head and the last ``n`` backbone blocks (or all) trainable; return their names.

    The result does not depend on the previous state: blocks before the last ``n`` are frozen.
    """
    blocks = backbone_blocks(model)
    count = parse_unfreeze(n)
    if count != "all" and count > len(blocks):
        raise UserError(
            f"--unfreeze {count} is more than {_arch(unwrap(model))}'s {len(blocks)} blocks",
            f"use 1..{len(blocks)} or all",
        )
    freeze_backbone(model)
    if count == "all":
        for param in unwrap(model).parameters():
            param.requires_grad_(True)
        return [name for name, _ in blocks]
    chosen = blocks[-count:]
    for _, block in chosen:
        for param in block.parameters():
            param.requires_grad_(True)
    return [name for name, _ in chosen]


def set_train_mode(model: nn.Module, train_bn: bool = False) -> None:
    """``model.train()``, except BatchNorm layers whose parameters are all frozen go to eval mode.

    With ``train_bn`` every BatchNorm trains (updates its running statistics) even when frozen.
    Call it at the start of every training epoch (evaluation calls ``model.eval()`` as usual).
    """
    model.train()
    if train_bn:
        return
    for module in unwrap(model).modules():
        if isinstance(module, _BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter elements."""
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def describe_trainable(model: nn.Module) -> dict:
    """What trains now, for logs: block names (trainable = any parameter trainable), counts."""
    inner = unwrap(model)
    blocks = inner.backbone_blocks() if hasattr(inner, "backbone_blocks") else []
    trainable_blocks = [name for name, b in blocks if any(p.requires_grad for p in b.parameters())]
    head = getattr(inner, "head", None)
    total, trainable = count_parameters(inner)
    layers = [m for m in inner.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    return {
        "trainable_blocks": trainable_blocks,
        "frozen_blocks": [name for name, _ in blocks if name not in trainable_blocks],
        "head_trainable": isinstance(head, nn.Module) and any(p.requires_grad for p in head.parameters()),
        "trainable_layers": len(layers),
        "trainable_parameters": trainable,
        "total_parameters": total,
    }


def check_mode(model: nn.Module, mode: str, weights: str, unfreeze: int | str) -> None:
    """Refuse a transfer-learning setup that cannot work, before any training (``--unfreeze`` too)."""
    if mode not in MODES:
        raise UserError(f"unknown --mode {mode!r}", f"choose one of: {', '.join(MODES)}")
    if mode == "scratch":
        return
    head_module(model)
    blocks = backbone_blocks(model)
    if mode == "finetune":
        count = parse_unfreeze(unfreeze)
        if count != "all" and count > len(blocks):
            raise UserError(
                f"--unfreeze {count} is more than {_arch(unwrap(model))}'s {len(blocks)} blocks",
                f"use 1..{len(blocks)} or all",
            )


@contextlib.contextmanager
def all_trainable(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily set ``requires_grad`` on every parameter (pruning graphs and Grad-CAM need gradients
    through frozen layers), restoring each parameter's flag afterwards."""
    params = list(unwrap(model).parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
