"""A pruning history and its replay: how a freshly built model takes a pruned model's shape.

torch-pruning records what it removed as a list of ``[module_name, is_out_channels, indices]``
(JSON-able). A pruned checkpoint stores that list in its card (``card.extra["pruning_history"]``) and
a plain safetensors state dict; to rebuild, :mod:`ignite_cv.weights` builds the original
architecture, calls :func:`replay_pruning`, then loads the weights strictly. torch-pruning's own
recommended save, ``torch.save(model)``, pickles whole modules; we never do (see its
``tests/test_load.py`` for the history route).

torch-pruning finds coupled layers by tracing ``grad_fn``: a parameter with ``requires_grad=False``
(a frozen backbone) drops out of the graph silently. Every trace runs inside :func:`traceable`, which
enables gradients on all parameters and restores each parameter's flag (by name: pruned parameters
are new objects) and each module's train/eval mode afterwards. This module depends only on torch
and torch-pruning, so the weights format can call it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.text import first_line

#: ``card.extra`` key of the JSON pruning history (a list of ``[module_name, is_out, indices]``).
HISTORY_KEY = "pruning_history"

History = list[list[Any]]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (batch-1 traces through BatchNorm1d fail in train mode); modes restored."""
    modes = {name: m.training for name, m in model.named_modules()}
    model.eval()
    try:
        yield
    finally:
        for name, m in model.named_modules():
            m.training = modes.get(name, m.training)


@contextlib.contextmanager
def traceable(model: nn.Module) -> Iterator[None]:
    """Gradients on for every parameter and for autograd, eval mode; everything restored by name after.

    torch-pruning traces ``grad_fn``; frozen parameters would fall out of its graph. Pruning replaces
    parameters with new ones (which default to ``requires_grad=True``), so flags are restored by name.
    """
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        with torch.inference_mode(False), torch.enable_grad(), eval_mode(model):
            yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags.get(name, True))
            p.grad = None


def json_history(history: Any) -> History:
    """torch-pruning's history as plain JSON types (names, bools, ints)."""

    def index(i: Any) -> int:
        return int(getattr(i, "idx", i))

    return [[str(name), bool(is_out), [index(i) for i in idxs]] for name, is_out, idxs in history]


def cannot_trace(model: nn.Module, err: BaseException) -> UserError:
    return UserError(
        f"torch-pruning cannot trace {type(model).__name__} ({type(err).__name__}: {first_line(err)})",
        "prune a registered architecture (mlp, tinyvgg, alexnet, alexnet_small, resnet18/34/50) or one whose "
        "forward is plain differentiable tensor code",
    )


def build_dependency_graph(model: nn.Module, example_input: torch.Tensor):
    """torch-pruning's DependencyGraph of ``model``; call inside :func:`traceable`."""
    import torch_pruning as tp

    try:
        return tp.DependencyGraph().build_dependency(model, example_input, verbose=False)
    except (RuntimeError, AssertionError, TypeError, ValueError, KeyError, AttributeError) as err:
        raise cannot_trace(model, err) from None


def apply_pruning_history(model: nn.Module, history: History, example_input: torch.Tensor) -> nn.Module:
    """Give the freshly built ``model`` the pruned shape recorded in ``history`` (in place; returns it).

    The weights are then whatever the pruned slices held; load the pruned state dict afterwards.
    """
    if not history:
        return model
    base = unwrap(model)
    with traceable(base):
        graph = build_dependency_graph(base, example_input)
        try:
            graph.load_pruning_history(copy.deepcopy(history))
        except (AttributeError, KeyError, IndexError, RuntimeError, TypeError, ValueError) as err:
            raise UserError(
                f"the pruning history does not fit {type(base).__name__} ({first_line(err)})",
                "the metadata was edited or belongs to another architecture; use an unedited checkpoint",
            ) from None
    return model


def has_pruning_history(extra: Any) -> bool:
    """Whether a card's ``extra`` records structural pruning to replay on a newly built model."""
    return isinstance(extra, dict) and bool(extra.get(HISTORY_KEY))


def replay_pruning(model: nn.Module, extra: dict, in_channels: int, image_size: list[int]) -> nn.Module:
    """``model`` (just built) in the shape recorded in a card's ``extra["pruning_history"]``, if any."""
    if not has_pruning_history(extra):
        return model
    history = extra[HISTORY_KEY]
    example = torch.zeros(1, in_channels, *image_size)
    return apply_pruning_history(model, history, example)
