"""Helpers on ``nn.Module``: the bare model inside its wrappers, and parameter counts."""

from __future__ import annotations

from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel / ``torch.compile`` wrappers (any nesting)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters) of the bare model, in elements."""
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)
