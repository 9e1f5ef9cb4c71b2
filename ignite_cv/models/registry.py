"""The model registry: architecture names → builder functions.

A builder is registered with :func:`register_model` and called as
``builder(in_channels=C, image_size=(H, W), num_outputs=K, **arch_args)``. ``num_outputs`` is the
number of logits (1 for a two-class task, see :mod:`ignite_cv.task`). The name and ``arch_args``
are stored in every checkpoint's metadata, so :func:`build_model` can rebuild a model from a
checkpoint alone, without the recipe that trained it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ignite_cv.utils.errors import UserError

ModelBuilder = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder`` under ``name`` (lower case, unique)."""

    def decorate(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = builder
        return builder

    return decorate


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def model_arg_names(name: str) -> list[str]:
    """The architecture arguments ``name``'s builder accepts (beyond channels, size and outputs)."""
    builder = get_builder(name)
    fixed = {"in_channels", "image_size", "num_outputs"}
    return [p for p in inspect.signature(builder).parameters if p not in fixed]


def get_builder(name: str) -> ModelBuilder:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}", f"choose one of: {', '.join(sorted(_REGISTRY))}") from None


def build_model(
    name: str, in_channels: int, image_size: tuple[int, int], num_outputs: int, **arch_args: Any
) -> nn.Module:
    """Build ``name``; arguments its builder does not take are ignored (configs carry many)."""
    builder = get_builder(name)
    accepted = set(model_arg_names(name))
    kwargs = {k: v for k, v in arch_args.items() if k in accepted}
    return builder(in_channels=in_channels, image_size=tuple(image_size), num_outputs=num_outputs, **kwargs)
