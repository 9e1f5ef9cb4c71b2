"""Training phases: what is trainable, with which optimizer, schedule and early stopping, for how long.

A plain run is one phase. Transfer learning plans several (e.g. warm up a new head, then unfreeze
blocks); each phase builds its own optimizer, LR schedule and early stopping after (un)freezing,
and the epochs of all phases form one timeline in logs and TensorBoard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ignite_cv.errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class Phase:
    """One phase. ``prepare(model)`` (un)freezes parameters and returns a short description of the change."""

    name: str
    epochs: int
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float = 0.9
    scheduler: str = "none"
    warmup_epochs: float = 0.0
    patience: int = 0
    prepare: Callable[[nn.Module], dict] | None = None
    info: dict = field(default_factory=dict)


def make_optimizer(
    name: str, params, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """SGD (Nesterov-free, with momentum), Adam (L2 decay) or AdamW (decoupled decay) over ``params``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError(
            "no trainable parameters in this phase", "unfreeze some blocks (--unfreeze) or use --mode scratch"
        )
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise UserError(f"unknown --optimizer {name!r}", f"choose one of: {', '.join(OPTIMIZERS)}")


def single_phase(config) -> list[Phase]:
    """The whole run as one phase, everything trainable, from the config's optimisation options."""
    return [
        Phase(
            name="train",
            epochs=config.epochs,
            optimizer=config.optimizer,
            lr=config.lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
            scheduler=config.scheduler,
            warmup_epochs=config.warmup_epochs,
            patience=config.patience,
        )
    ]
