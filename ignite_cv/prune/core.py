"""Structured channel pruning with torch-pruning: :func:`prune` and its result.

:func:`prune` removes whole channels (conv filters, linear units and the BatchNorm/next-layer slices
coupled to them) with torch-pruning's dependency graph: by a channel ratio, a MAC budget or a MAC
speed-up, ranked by weight magnitude, first-order Taylor (needs a loss) or BatchNorm scale, either per
layer (uniform) or across layers (global), in one or several steps. The classifier's outputs are never
pruned. It returns a :class:`PruneResult` whose ``history`` (:mod:`ignite_cv.prune.history`) is all a
fresh model needs to take the same shape; :func:`save_pruned` writes the model with that history in
its card, so :func:`ignite_cv.weights.load_model` rebuilds it in any process.

MACs are multiply-accumulates of one forward pass at batch size 1 (``tp.utils.count_ops_and_params``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ignite_cv.profile.model import count_macs_params
from ignite_cv.prune.history import (
    HISTORY_KEY,
    History,
    apply_pruning_history,
    cannot_trace,
    eval_mode,
    json_history,
    traceable,
)
from ignite_cv.prune.options import IMPORTANCES, check_prune_spec
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.text import human_count
from ignite_cv.weights import ModelCard, save_model

#: ``card.extra`` key of a list with one summary dict per pruning round (ratio, importance, MACs...).
INFO_KEY = "pruning"

#: The largest channel ratio a MAC-target search tries.
MAX_SEARCH_RATIO = 0.99
#: Most bisection steps of that search (ratio resolution 0.99 / 2**12 ≈ 0.00024); it stops earlier once the
#: interval is finer than one channel.
SEARCH_STEPS = 12


def classifier_layers(model: nn.Module, example_input: torch.Tensor) -> list[nn.Module]:
    """The layer that produces the logits: the last Linear or Conv executed in a forward pass.

    Its output channels are the classes, so pruning must leave them alone (its inputs may shrink).
    """
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda module, _inputs, _output: order.append(module))
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return order[-1:]


# ----------------------------------------------------------------------------------------------
# tracing helpers


@dataclass
class PruneResult:
    """What one :func:`prune` call did. MACs and parameters are for one image (batch 1)."""

    history: History
    ratio: float
    importance: str
    global_pruning: bool
    iterative_steps: int
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    target_macs: int | None = None
    channels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def mac_reduction(self) -> float:
        """How many times fewer MACs (before / after)."""
        return self.macs_before / max(self.macs_after, 1)

    def info(self) -> dict[str, Any]:
        """A JSON summary for the model card and reports (without the long history)."""
        out = dataclasses.asdict(self)
        out.pop("history")
        out["mac_reduction"] = round(self.mac_reduction, 4)
        out["ratio"] = round(self.ratio, 6)
        return out


def _make_importance(name: str):
    import torch_pruning as tp

    if name == "magnitude":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.TaylorImportance()
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    raise UserError(f"unknown --importance {name!r}", f"choose one of: {', '.join(IMPORTANCES)}")


def _layer_channels(model: nn.Module) -> dict[str, list[int]]:
    """``{name: [in, out]}`` of every conv and linear layer."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            out[name] = [m.in_channels, m.out_channels]
        elif isinstance(m, nn.Linear):
            out[name] = [m.in_features, m.out_features]
    return out


@dataclass
class _Trial:
    model: nn.Module
    history: History
    refused: list[str]  # layers torch-pruning refused to prune because every channel would go
    macs: int


def _prune_copy(
    base: nn.Module,
    example_input: torch.Tensor,
    ratio: float,
    importance: str,
    global_pruning: bool,
    iterative_steps: int,
    ignored_names: list[str],
    loss_fn: Callable[[nn.Module], torch.Tensor] | None,
) -> _Trial:
    """Prune a deep copy of ``base`` and report what happened; ``base`` is untouched."""
    import torch_pruning as tp

    model = copy.deepcopy(base)
    modules = dict(model.named_modules())
    ignored = [modules[name] for name in ignored_names]
    refused: list[str] = []
    with traceable(model):
        try:
            pruner = tp.pruner.BasePruner(
                model,
                example_input,
                _make_importance(importance),
                global_pruning=global_pruning,
                pruning_ratio=ratio,
                iterative_steps=iterative_steps,
                ignored_layers=ignored,
            )
        except UserError:
            raise
        except (RuntimeError, AssertionError, TypeError, ValueError, KeyError, AttributeError) as err:
            raise cannot_trace(base, err) from None
        graph = pruner.DG
        check = graph.check_pruning_group

        def recording_check(group) -> bool:
            # torch-pruning silently skips a group whose pruning would leave no channel; we report it.
            ok = check(group)
            if not ok:
                refused.append(graph._module2name.get(group[0].dep.target.module, "?"))
            return ok

        graph.check_pruning_group = recording_check
        for _ in range(iterative_steps):
            if importance == "taylor":
                model.zero_grad(set_to_none=True)
                loss_fn(model).backward()
            pruner.step()
        history = json_history(pruner.pruning_history())
    try:
        with torch.no_grad(), eval_mode(model):
            model(example_input)
    except RuntimeError as err:
        raise cannot_trace(base, err) from None
    macs, _ = count_macs_params(model, example_input)
    return _Trial(model, history, sorted(set(refused)), macs)


def prune(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    importance: str = "magnitude",
    ratio: float | None = None,
    target_macs: float | None = None,
    speedup: float | None = None,
    global_pruning: bool = False,
    iterative_steps: int = 1,
    ignored: list[nn.Module] | None = None,
    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
) -> PruneResult:
    """Remove channels from ``model`` in place; returns what was removed (``result.history``).

    Exactly one of:
        ratio: the fraction of channels to remove, in (0, 1): from every layer (uniform) or in total
            across layers ranked together (``global_pruning``).
        target_macs: the largest MAC count (batch 1) the pruned model may have; the smallest ratio that
            reaches it is found by bisection on copies of the model.
        speedup: MACs before / MACs after, at least this much (same search).

    ``importance``: ``magnitude`` (L2 norm of each channel's weights across the coupled layers),
    ``taylor`` (|weight × gradient|; ``loss_fn(model)`` must return a loss on real batches, it is
    back-propagated before each step) or ``bn-scale`` (|γ| of the BatchNorm after each layer; needs
    BatchNorm). ``iterative_steps``: reach the ratio in that many equal steps, re-ranking in between.
    ``ignored``: layers whose output channels stay (default: the classifier, found by a forward pass).
    ``example_input``: one input batch (on the model's device) used for tracing and counting MACs.

    The pruning is computed on a copy, checked (a layer losing every channel, a trace that breaks the
    model: :class:`UserError`), then replayed on ``model`` from the history, exactly as a reload does.
    """
    check_prune_spec(ratio, target_macs, speedup, importance, iterative_steps)
    base = unwrap(model)
    if importance == "taylor" and loss_fn is None:
        raise UserError(
            "--importance taylor needs batches of data to compute gradients",
            "pass --dataset/--data-root, or use --importance magnitude",
        )
    if importance == "bn-scale" and not any(isinstance(m, _BatchNorm) for m in base.modules()):
        raise UserError(
            f"--importance bn-scale needs BatchNorm layers and {type(base).__name__} has none",
            "use --importance magnitude or taylor",
        )
    try:
        ignored = ignored if ignored is not None else classifier_layers(base, example_input)
    except RuntimeError as err:
        raise cannot_trace(base, err) from None
    names = {m: name for name, m in base.named_modules()}
    ignored_names = [names[m] for m in ignored]
    macs_before, params_before = count_macs_params(base, example_input)

    def trial(r: float) -> _Trial:
        return _prune_copy(
            base, example_input, r, importance, global_pruning, iterative_steps, ignored_names, loss_fn
        )

    goal: int | None = None
    if ratio is None:
        goal = int(target_macs if target_macs is not None else macs_before / speedup)
        if goal >= macs_before:
            raise UserError(
                f"the model already has {human_count(macs_before)} MACs, "
                f"not more than the target {human_count(goal)}",
                "ask for fewer MACs (a lower --target-macs or a higher --speedup)",
            )
        widths = [
            m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features
            for m in base.modules()
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m not in ignored
        ]
        # Channel counts move in steps of 1/width (uniform) or 1/total (global); finer ratios change nothing.
        resolution = 1.0 / (2 * max(sum(widths) if global_pruning else max(widths, default=1), 1))
        ratio, chosen = _search_ratio(trial, goal, resolution)
    else:
        chosen = trial(ratio)
        if chosen.refused:
            raise UserError(
                f"--ratio {ratio} would remove every channel of {', '.join(chosen.refused[:3])}",
                "use a smaller --ratio (or uniform pruning, without --global)",
            )
    if not chosen.history:
        raise UserError(
            f"torch-pruning found no channel to remove in {type(base).__name__} at ratio {ratio:.3g} "
            "(its trace through grad_fn reached no prunable layer, or every layer is too small)",
            "use a larger --ratio, or an architecture whose forward is differentiable (no torch.no_grad or "
            "detach inside) with conv/linear layers",
        )
    apply_pruning_history(base, chosen.history, example_input)
    macs_after, params_after = count_macs_params(base, example_input)
    return PruneResult(
        history=chosen.history,
        ratio=float(ratio),
        importance=importance,
        global_pruning=global_pruning,
        iterative_steps=iterative_steps,
        macs_before=macs_before,
        macs_after=macs_after,
        params_before=params_before,
        params_after=params_after,
        target_macs=goal,
        channels=_layer_channels(base),
    )


def _search_ratio(trial: Callable[[float], _Trial], goal: int, resolution: float) -> tuple[float, _Trial]:
    """The smallest ratio whose pruned copy has at most ``goal`` MACs (bisection; MACs fall with the ratio).

    Ratios past the point where a layer would lose every channel are invalid and count as too far.
    """
    lo, hi = 0.0, MAX_SEARCH_RATIO
    best: tuple[float, _Trial] | None = None
    refused: list[str] = []
    fewest = math.inf
    for _ in range(SEARCH_STEPS):
        mid = (lo + hi) / 2 if best is not None or refused or lo > 0 else hi
        result = trial(mid)
        if result.refused:
            refused = result.refused
            hi = mid
        elif result.macs <= goal:
            best = (mid, result)
            hi = mid
        else:
            fewest = min(fewest, result.macs)
            lo = mid
        if hi - lo < resolution:
            break
    if best is None:
        if refused:
            raise UserError(
                f"reaching {human_count(goal)} MACs would remove every channel of {', '.join(refused[:3])}",
                "ask for fewer MACs removed (a higher --target-macs or a lower --speedup)",
            )
        raise UserError(
            f"{human_count(goal)} MACs cannot be reached: pruning leaves at least {human_count(fewest)} "
            "(the classifier and input layer keep their channels)",
            "ask for a higher --target-macs or a lower --speedup",
        )
    return best


def pruned_card(card: ModelCard, result: PruneResult) -> ModelCard:
    """``card`` with ``result``'s history appended (a model may be pruned more than once) and its summary."""
    extra = dict(card.extra)
    extra[HISTORY_KEY] = list(extra.get(HISTORY_KEY) or []) + result.history
    extra[INFO_KEY] = list(extra.get(INFO_KEY) or []) + [result.info()]
    return dataclasses.replace(card, extra=extra)


def save_pruned(path: str | Path, model: nn.Module, card: ModelCard, result: PruneResult) -> ModelCard:
    """Write the pruned model as ``.safetensors`` with the history in its metadata; returns the new card."""
    new_card = pruned_card(card, result)
    save_model(path, model, new_card)
    return new_card


def example_input_for(
    card: ModelCard, device: torch.device | str = "cpu", batch_size: int = 1
) -> torch.Tensor:
    """A zero batch of the model's input shape (normalised float images)."""
    return torch.zeros(batch_size, card.in_channels, *card.image_size, device=device)


# ----------------------------------------------------------------------------------------------
# prune + fine-tune workflow
