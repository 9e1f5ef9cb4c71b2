"""Leave a model exactly as it was found: train/eval mode per module and ``requires_grad`` per parameter.

Explaining a model runs it in eval mode (BatchNorm on running statistics, no dropout), possibly in the
middle of a training run whose frozen BatchNorm layers must stay in eval mode and whose frozen
backbone must stay frozen. ``model.train()``/``model.eval()`` afterwards would lose those per-module
choices, so every module's flag and every parameter's flag are recorded and put back one by one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block do anything to ``model``'s modes and ``requires_grad``; afterwards (also on an
    exception) each module's ``training`` and each parameter's ``requires_grad`` are as before."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param, flag in flags:
            param.requires_grad_(flag)
