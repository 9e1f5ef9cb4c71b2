"""Weight initialisation for layers that train from random weights (``--init default|kaiming|xavier``).

Why a choice: PyTorch's default for ``Conv``/``Linear`` is Kaiming-uniform with ``a = sqrt(5)``, i.e.
uniform in ±1/sqrt(fan_in) (std = 1/sqrt(3·fan_in)), which shrinks activations layer by layer in
deep ReLU networks. A study compares it with:

* ``kaiming`` (He et al. 2015): std = gain / sqrt(fan_in), gain = sqrt(2) for ReLU — keeps the variance
  of the forward activations constant through ReLU layers;
* ``xavier`` (Glorot & Bengio 2010): std = gain · sqrt(2 / (fan_in + fan_out)), gain = 1 — balances
  forward and backward variance for linear / tanh-like units.

``distribution`` draws the weights from a normal distribution with that std, or a uniform one in
±sqrt(3)·std (the same std); :mod:`torch.nn.init`'s ``kaiming_*_`` / ``xavier_*_`` draw them.
Biases are set to zero. Only convolution (1-3 d, transposed too) and linear weights are touched:
BatchNorm keeps PyTorch's weight 1 / bias 0, and other layers are left alone. ``fan_in`` = input
channels × kernel elements (per group), ``fan_out`` = output channels × kernel elements, as
:func:`torch.nn.init._calculate_fan_in_and_fan_out` computes them.

Every conv/linear layer in the module passed is initialised, whatever its ``requires_grad``: the caller
decides what trains from random weights (call it on the freshly built model before loading pretrained
weights, which then overwrite the backbone, or on a new head alone).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ignite_cv.utils.errors import UserError

INIT_SCHEMES = ("default", "kaiming", "xavier")
INIT_DISTRIBUTIONS = ("normal", "uniform")

#: Layers whose ``weight`` (and ``bias``) :func:`initialize` sets.
INITIALIZED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def _check(scheme: str, distribution: str) -> None:
    if scheme not in INIT_SCHEMES:
        raise UserError(f"unknown --init {scheme!r}", f"choose one of: {', '.join(INIT_SCHEMES)}")
    if distribution not in INIT_DISTRIBUTIONS:
        raise UserError(
            f"unknown --init-distribution {distribution!r}", f"choose one of: {', '.join(INIT_DISTRIBUTIONS)}"
        )


def target_std(weight: torch.Tensor, scheme: str, nonlinearity: str = "relu") -> float:
    """The standard deviation ``scheme`` gives ``weight`` (``kaiming`` or ``xavier``), from its fans."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    if scheme == "kaiming":
        return nn.init.calculate_gain(nonlinearity) / math.sqrt(fan_in)
    if scheme == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    raise ValueError(f"no formula for scheme {scheme!r}")


def initialize(
    model: nn.Module, scheme: str, distribution: str = "normal", nonlinearity: str = "relu"
) -> int:
    """Initialise every conv/linear weight in ``model`` with ``scheme``; biases to zero.

    ``scheme``: ``default`` (leave PyTorch's initialisation untouched), ``kaiming`` (fan_in mode,
    gain of ``nonlinearity``: sqrt(2) for ReLU) or ``xavier`` (gain 1). ``distribution``: ``normal``
    or ``uniform``. Returns the number of layers initialised (0 for ``default``). Raises
    :class:`UserError` for an unknown scheme or distribution.
    """
    _check(scheme, distribution)
    if scheme == "default":
        return 0
    count = 0
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, INITIALIZED_LAYERS):
                continue
            if scheme == "kaiming":
                init = nn.init.kaiming_normal_ if distribution == "normal" else nn.init.kaiming_uniform_
                init(module.weight, mode="fan_in", nonlinearity=nonlinearity)
            else:
                init = nn.init.xavier_normal_ if distribution == "normal" else nn.init.xavier_uniform_
                init(module.weight, gain=1.0)
            if module.bias is not None:
                module.bias.zero_()
            count += 1
    return count
