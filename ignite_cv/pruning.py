"""Structured channel pruning with torch-pruning, saved without pickles and rebuilt from a checkpoint alone.

Three layers, from the library call to the workflow:

1. :func:`prune` removes whole channels (conv filters, linear units and the BatchNorm/next-layer slices
   coupled to them) with torch-pruning's dependency graph: by a channel ratio, a MAC budget or a MAC
   speed-up, ranked by weight magnitude, first-order Taylor (needs a loss) or BatchNorm scale, either
   per layer (uniform) or across layers (global), in one or several steps. The classifier's outputs are
   never pruned. It returns a :class:`PruneResult` whose ``history`` (a JSON list of
   ``[module_name, is_out_channels, indices]``) is all a fresh model needs to take the same shape.
2. Saving: :func:`pruned_card` puts the history in ``card.extra["pruning_history"]`` and
   :func:`ignite_cv.weights.save_model` writes a plain ``.safetensors`` state dict (torch-pruning's own
   recommendation, ``torch.save(model)``, pickles whole modules; we never do). Importing this module
   registers :func:`replay_pruning` as a :mod:`ignite_cv.weights` rebuild hook, so
   :func:`~ignite_cv.weights.load_model` builds the original architecture, replays the history, then
   loads the weights strictly.
3. :func:`prune_and_finetune`: measure, prune, fine-tune with the framework's own engines and handlers,
   measure again, save the model and a before/after table. ``tools/prune.py`` and ``--prune-after``
   (:func:`prune_after_training`) both call it.

torch-pruning finds coupled layers by tracing ``grad_fn``: a parameter with ``requires_grad=False``
(a frozen backbone) drops out of the graph silently and the pruned model is broken. Every trace here
runs with gradients enabled on all parameters and restores each parameter's ``requires_grad`` (by name:
pruned parameters are new objects) and each module's train/eval mode afterwards.

MACs are multiply-accumulates of one forward pass at batch size 1 (``tp.utils.count_ops_and_params``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.options import option
from ignite_cv.utils.text import first_line, human_count, markdown_table
from ignite_cv.weights import ModelCard, register_rebuild_hook, save_model

#: ``card.extra`` key of the JSON pruning history (a list of ``[module_name, is_out, indices]``).
HISTORY_KEY = "pruning_history"
#: ``card.extra`` key of a list with one summary dict per pruning round (ratio, importance, MACs...).
INFO_KEY = "pruning"
IMPORTANCES = ("magnitude", "taylor", "bn-scale")
#: The largest channel ratio a MAC-target search tries.
MAX_SEARCH_RATIO = 0.99
#: Most bisection steps of that search (ratio resolution 0.99 / 2**12 ≈ 0.00024); it stops earlier once the
#: interval is finer than one channel.
SEARCH_STEPS = 12

History = list[list[Any]]


# ----------------------------------------------------------------------------------------------
# measuring


def count_macs_params(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """(MACs, parameters) of one forward pass of ``example_input`` (torch-pruning's counter, on a copy)."""
    import torch_pruning as tp

    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(unwrap(model), example_input)
    return int(macs), int(params)


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
        with _eval_mode(model), torch.no_grad():
            model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return order[-1:]


# ----------------------------------------------------------------------------------------------
# tracing helpers


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
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
        with torch.inference_mode(False), torch.enable_grad(), _eval_mode(model):
            yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags.get(name, True))
            p.grad = None


def _json_history(history: Any) -> History:
    """torch-pruning's history as plain JSON types (names, bools, ints)."""

    def index(i: Any) -> int:
        return int(getattr(i, "idx", i))

    return [[str(name), bool(is_out), [index(i) for i in idxs]] for name, is_out, idxs in history]


def _cannot_trace(model: nn.Module, err: BaseException) -> UserError:
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
        raise _cannot_trace(model, err) from None


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


def replay_pruning(model: nn.Module, card: ModelCard) -> nn.Module:
    """Rebuild hook for :mod:`ignite_cv.weights`: replay ``card.extra["pruning_history"]`` if there is one."""
    history = card.extra.get(HISTORY_KEY) if isinstance(card.extra, dict) else None
    if not history:
        return model
    example = torch.zeros(1, card.in_channels, *card.image_size)
    return apply_pruning_history(model, history, example)


register_rebuild_hook(replay_pruning)


# ----------------------------------------------------------------------------------------------
# pruning


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
            raise _cannot_trace(base, err) from None
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
        history = _json_history(pruner.pruning_history())
    try:
        with torch.no_grad(), _eval_mode(model):
            model(example_input)
    except RuntimeError as err:
        raise _cannot_trace(base, err) from None
    macs, _ = count_macs_params(model, example_input)
    return _Trial(model, history, sorted(set(refused)), macs)


def _check_spec(
    ratio: float | None,
    target_macs: float | None,
    speedup: float | None,
    importance: str,
    iterative_steps: int,
) -> None:
    given = [
        name
        for name, v in (("--ratio", ratio), ("--target-macs", target_macs), ("--speedup", speedup))
        if v is not None
    ]
    if len(given) != 1:
        raise UserError(
            f"give exactly one of --ratio, --target-macs, --speedup (got {', '.join(given) or 'none'})",
            "e.g. --ratio 0.5 removes half the channels of each layer",
        )
    if ratio is not None and not 0.0 < ratio < 1.0:
        raise UserError(
            f"--ratio {ratio} is outside (0, 1)", "pass the fraction of channels to remove, e.g. --ratio 0.5"
        )
    if speedup is not None and not speedup > 1.0:
        raise UserError(
            f"--speedup {speedup} must be greater than 1", "pass e.g. --speedup 2 for half the MACs"
        )
    if target_macs is not None and not target_macs > 0:
        raise UserError(f"--target-macs {target_macs} must be positive", "pass a MAC count such as 5e6 or 5M")
    if importance not in IMPORTANCES:
        raise UserError(f"unknown --importance {importance!r}", f"choose one of: {', '.join(IMPORTANCES)}")
    if iterative_steps < 1:
        raise UserError(f"--iterative-steps {iterative_steps} must be >= 1", "pass 1 to prune in one step")


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
    _check_spec(ratio, target_macs, speedup, importance, iterative_steps)
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
        raise _cannot_trace(base, err) from None
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


@dataclass
class PruneOptions:
    """What :func:`prune_and_finetune` does. ``lr`` is the fine-tuning peak LR (cosine to 1e-3 of it)."""

    ratio: float | None = None
    target_macs: float | None = None
    speedup: float | None = None
    importance: str = "magnitude"
    global_pruning: bool = False
    iterative_steps: int = 1
    finetune_epochs: int = 3
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    batch_size: int = 128
    seed: int = 0
    workers: int = 0
    #: As in training, for image folders decoded from files.
    center_crop: bool = False
    monitor: str = "auto"
    monitor_mode: str = "auto"
    #: Samples of the training split whose loss gradients rank channels for ``taylor``.
    taylor_samples: int = 512
    latency_warmup: int = 5
    latency_repeats: int = 30
    #: Stop repeating a latency measurement after this many seconds (at least 5 repeats).
    latency_budget_s: float = 10.0
    log_every: int = 50

    def check(self) -> None:
        _check_spec(self.ratio, self.target_macs, self.speedup, self.importance, self.iterative_steps)
        if self.finetune_epochs < 0:
            raise UserError(
                f"--finetune-epochs {self.finetune_epochs} must be >= 0", "pass 0 to skip fine-tuning"
            )
        if self.finetune_epochs > 0 and not self.lr > 0:
            raise UserError(
                f"the fine-tuning learning rate {self.lr} must be positive", "pass e.g. --lr 1e-3"
            )
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size} must be >= 1", "pass e.g. 128")


def _loader(split, batch_size: int, train: bool, options: PruneOptions, data) -> Any:
    """One process's loader; in-memory splits stay where they are (the CPU, or the device they are on)."""
    from ignite_cv.data.loaders import build_loader

    device = split.images.device if split.in_memory else torch.device("cpu")
    return build_loader(
        split,
        batch_size=batch_size,
        train=train,
        device=device,
        seed=options.seed,
        rank=0,
        world_size=1,
        workers=options.workers,
        pin_memory=False,
        image_size=data.image_size,
        channels=data.channels,
        center_crop=options.center_crop,
    )


def _taylor_loss(
    train_split, data, task, pipeline, device, options: PruneOptions
) -> Callable[[nn.Module], Any]:
    """A loss on the first ``taylor_samples`` training images (evaluation order: the same every call)."""
    loader = _loader(train_split, min(options.taylor_samples, len(train_split)), False, options, data)
    images, labels = next(iter(loader))
    images, labels = images.to(device), labels.to(device)
    with torch.no_grad():
        x = pipeline(images, augment=False)

    def loss_fn(model: nn.Module) -> torch.Tensor:
        return task.loss(model(x), labels)

    return loss_fn


def _evaluate(model, loader, task, pipeline, device, step_options) -> dict[str, float]:
    from ignite_cv.engine import create_evaluator
    from ignite_cv.metrics import evaluation_metrics, scalar_metrics

    evaluator = create_evaluator(
        model, task, pipeline, device, step_options, evaluation_metrics(task, device)
    )
    evaluator.run(loader)
    return scalar_metrics(evaluator.state.metrics)


def _measure(model, card, device, metrics: dict[str, float]) -> dict[str, Any]:
    """Test metrics, parameters and MACs of ``model`` (latency: :func:`_add_latency`)."""
    macs, params = count_macs_params(model, example_input_for(card, device))
    row: dict[str, Any] = {
        "test_accuracy": metrics.get("accuracy"),
        "test_loss": metrics.get("loss"),
        "params": params,
        "macs": macs,
    }
    if "roc_auc" in metrics and card.num_outputs == 1:
        row["test_roc_auc"] = metrics["roc_auc"]
    return row


def _add_latency(rows: list[dict], models: list[nn.Module], card, device, options: PruneOptions) -> None:
    """Latency rows for each model, timed interleaved so that all see the same machine load."""
    from ignite_cv.profiling import interleaved_latency

    for batch in sorted({1, options.batch_size}):
        example = example_input_for(card, device, batch).normal_()
        stats = interleaved_latency(
            models,
            [example] * len(models),
            warmup=options.latency_warmup,
            repeats=options.latency_repeats,
            budget_s=options.latency_budget_s,
        )
        for row, stat in zip(rows, stats):
            row[f"latency_b{batch}_ms"] = round(stat.median_ms, 4)
            row[f"latency_b{batch}_p90_ms"] = round(stat.p90_ms, 4)
            row[f"throughput_b{batch}"] = round(stat.throughput, 2)


def _finetune(
    model,
    data,
    task,
    pipeline,
    device,
    step_options,
    options: PruneOptions,
    out_dir: Path,
    train_mode,
    progress,
) -> dict[str, Any]:
    """Fine-tune with the training engines, a cosine schedule and best-on-validation weights restored."""
    from ignite.engine import Events

    from ignite_cv.engine import create_evaluator, create_trainer
    from ignite_cv.handlers.best_weights import BestWeights
    from ignite_cv.handlers.history import MetricsHistory, epoch_row
    from ignite_cv.handlers.lr_schedule import ScheduleOptions, attach_lr_schedule
    from ignite_cv.handlers.monitor import Monitor
    from ignite_cv.handlers.nonfinite import NonFiniteLossError, TerminateOnNonFiniteLoss
    from ignite_cv.handlers.progress import ProgressReporter
    from ignite_cv.metrics import evaluation_metrics, training_metrics
    from ignite_cv.phases import make_optimizer

    train_loader = _loader(data.train, options.batch_size, True, options, data)
    val_loader = _loader(data.val, options.batch_size, False, options, data)
    optimizer = make_optimizer(
        options.optimizer, model.parameters(), options.lr, options.weight_decay, options.momentum
    )
    trainer = create_trainer(model, optimizer, task, pipeline, device, step_options, train_mode=train_mode)
    evaluator = create_evaluator(
        model, task, pipeline, device, step_options, evaluation_metrics(task, device)
    )
    monitor = Monitor.resolve(options.monitor, options.monitor_mode, task.binary)
    best = BestWeights(model, monitor)
    best.attach(evaluator, lambda: trainer.state.epoch)
    TerminateOnNonFiniteLoss(options.log_every).attach(trainer)
    for name, metric in training_metrics(device).items():
        metric.attach(trainer, name)
    if hasattr(train_loader, "set_epoch"):
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: train_loader.set_epoch(e.state.epoch))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run(val_loader))
    steps = max(len(train_loader) // step_options.accumulate_steps, 1)
    attach_lr_schedule(
        ScheduleOptions("cosine", options.lr, options.finetune_epochs, steps), optimizer, trainer
    )
    history = MetricsHistory(out_dir / "finetune_metrics.jsonl")
    started = {"t": time.perf_counter()}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: started.update(t=time.perf_counter()))
    evaluator.add_event_handler(
        Events.COMPLETED,
        lambda ev: history.append(
            epoch_row(
                trainer.state.epoch,
                "prune-finetune",
                optimizer.param_groups[0]["lr"],
                time.perf_counter() - started["t"],
                trainer.state.metrics,
                ev.state.metrics,
            )
        ),
    )
    if progress:
        ProgressReporter(
            options.finetune_epochs,
            lambda: trainer.state.epoch,
            options.log_every,
            lambda: optimizer.param_groups[0]["lr"],
            phase="prune-finetune",
            use_bars=False,
        ).attach(trainer, evaluator)
    try:
        trainer.run(train_loader, max_epochs=options.finetune_epochs)
    except NonFiniteLossError as err:
        raise UserError(
            f"fine-tuning the pruned model diverged ({err})", "lower the fine-tuning learning rate"
        ) from None
    best.restore()
    return {"epochs": trainer.state.epoch, "best": best.summary()}


TABLE_ROWS = (
    ("test accuracy", "test_accuracy", "{:.4f}"),
    ("test loss", "test_loss", "{:.4f}"),
    ("parameters", "params", "{:,}"),
    ("MACs (batch 1)", "macs", "{:,}"),
)


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    """Rows ``[quantity, before, after, after/before]`` of the before/after table."""
    rows = [list(r) for r in _static_rows(before, after)]
    batches = sorted(
        {
            int(k[len("latency_b") : -3])
            for k in before
            if k.startswith("latency_b") and k.endswith("_ms") and "_p90" not in k
        }
    )
    for batch in batches:
        rows += _static_rows(
            before,
            after,
            (
                (f"latency batch {batch}, median (ms)", f"latency_b{batch}_ms", "{:.3f}"),
                (f"latency batch {batch}, p90 (ms)", f"latency_b{batch}_p90_ms", "{:.3f}"),
                (f"throughput batch {batch} (img/s)", f"throughput_b{batch}", "{:,.1f}"),
            ),
        )
    return rows


def _static_rows(before, after, spec=TABLE_ROWS) -> list[list[str]]:
    rows = []
    for label, key, fmt in spec:
        b, a = before.get(key), after.get(key)
        if b is None or a is None:
            continue
        ratio = f"{a / b:.3f}×" if b else "-"
        if key.startswith("test_"):
            ratio = f"{(a - b) * (100 if 'accuracy' in key else 1):+.2f}{' pts' if 'accuracy' in key else ''}"
        rows.append([label, fmt.format(b), fmt.format(a), ratio])
    return rows


def prune_and_finetune(
    model: nn.Module,
    card: ModelCard,
    data,
    task,
    pipeline,
    device: torch.device,
    out_dir: str | Path,
    options: PruneOptions,
    step_options=None,
    train_mode: Callable[[nn.Module], None] | None = None,
    say: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Measure ``model`` (test accuracy, parameters, MACs, latency), prune it, fine-tune, measure again.

    ``model`` is pruned in place (pass a copy to keep the original). ``data`` is a
    :class:`~ignite_cv.data.splits.DataBundle`; ``pipeline`` the batch pipeline that normalises its uint8
    images like the model was trained; latency is measured on ``device``. Writes into ``out_dir``:
    ``pruned.safetensors`` (loadable by :func:`ignite_cv.weights.load_model` in any process),
    ``pruning.json`` (before, after, options, pruning summary), ``pruning.md`` (the table) and
    ``finetune_metrics.jsonl``. Returns the ``pruning.json`` content.
    """
    from ignite_cv.engine import StepOptions
    from ignite_cv.weights import load_model

    options.check()
    step_options = step_options or StepOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = say is not None  # per-epoch lines of the fine-tuning
    say = say or (lambda _message: None)
    model = unwrap(model).to(device)
    torch.manual_seed(options.seed)
    test_loader = _loader(data.test, options.batch_size, False, options, data)

    loss_fn = (
        _taylor_loss(data.train, data, task, pipeline, device, options)
        if options.importance == "taylor"
        else None
    )
    original = copy.deepcopy(model)
    started = time.perf_counter()
    # Prune first: an impossible target fails before minutes of measuring.
    result = prune(
        model,
        example_input_for(card, device),
        importance=options.importance,
        ratio=options.ratio,
        target_macs=options.target_macs,
        speedup=options.speedup,
        global_pruning=options.global_pruning,
        iterative_steps=options.iterative_steps,
        loss_fn=loss_fn,
    )
    prune_seconds = time.perf_counter() - started
    say("pruning: testing the model before pruning")
    before = _measure(
        original, card, device, _evaluate(original, test_loader, task, pipeline, device, step_options)
    )
    scope = "global" if options.global_pruning else "uniform"
    say(
        f"pruning: ratio {result.ratio:.3f} ({options.importance}, {scope}): "
        f"MACs {human_count(result.macs_before)} → "
        f"{human_count(result.macs_after)} ({result.mac_reduction:.2f}× fewer), parameters "
        f"{human_count(result.params_before)} → {human_count(result.params_after)} in {prune_seconds:.1f}s"
    )
    pruned_metrics = _evaluate(model, test_loader, task, pipeline, device, step_options)
    finetune: dict[str, Any] = {"epochs": 0}
    if options.finetune_epochs > 0:
        say(f"pruning: fine-tuning for {options.finetune_epochs} epochs (lr {options.lr:g}, cosine)")
        finetune = _finetune(
            model, data, task, pipeline, device, step_options, options, out_dir, train_mode, progress
        )
    after = _measure(model, card, device, _evaluate(model, test_loader, task, pipeline, device, step_options))
    say("pruning: timing both models (interleaved)")
    _add_latency([before, after], [original, model], card, device, options)
    del original

    model_path = out_dir / "pruned.safetensors"
    new_card = save_pruned(model_path, model, card, result)
    reloaded, _ = load_model(model_path, device)
    probe = torch.randn(2, card.in_channels, *card.image_size, device=device)
    with torch.no_grad():
        model.eval()
        if not torch.allclose(reloaded(probe), model(probe), rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"{model_path} does not reload to the same model; please report this")

    header = ["", "before", "after", "after vs before"]
    rows = comparison_rows(before, after)
    table = markdown_table(header, rows)
    summary = {
        "model": str(model_path),
        "before": before,
        "after": after,
        "pruned_before_finetune": {"test_accuracy": pruned_metrics.get("accuracy")},
        "pruning": result.info(),
        "finetune": finetune,
        "options": dataclasses.asdict(options),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "table": rows,
        "history_entries": len(new_card.extra[HISTORY_KEY]),
    }
    (out_dir / "pruning.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out_dir / "pruning.md").write_text(
        f"# Pruning: {card.arch}, ratio {result.ratio:.3f}, {options.importance}, "
        f"{'global' if options.global_pruning else 'uniform'}, "
        f"{options.finetune_epochs} fine-tuning epochs\n\n"
        f"Latency on {device} ({torch.get_num_threads()} threads), both models timed in alternating blocks: "
        f"median of up to {options.latency_repeats} "
        f"repeats after {options.latency_warmup} warm-up passes. "
        "MACs are torch-pruning's count for one image.\n\n" + table
    )
    say("pruning: before / after\n" + table.rstrip())
    say(f"pruning: model saved to {model_path}")
    return summary


@dataclass
class PruneAfterOptions:
    """The ``--prune-after`` family of config fields (a recipe's config inherits them)."""

    prune_after: float = option(
        0.0,
        "after training, prune this fraction of channels (0 < R < 1) from a copy of the best model, "
        "fine-tune it and compare before/after in <run>/pruning/ (0 = off)",
    )
    prune_importance: str = option(
        "magnitude",
        "--prune-after channel ranking: weight magnitude, first-order Taylor, or BatchNorm scale",
        choices=IMPORTANCES,
    )
    prune_global: bool = option(
        False, "--prune-after: rank channels across layers instead of removing the same fraction from each"
    )
    prune_iterative_steps: int = option(1, "--prune-after: reach the ratio in this many pruning steps")
    prune_finetune_epochs: int = option(3, "--prune-after: fine-tuning epochs after pruning (0 = none)")
    prune_lr: float = option(
        0.0, "--prune-after: fine-tuning peak learning rate, cosine schedule (0 = --lr / 10)"
    )


def check_prune_after(config: Any) -> None:
    """Refuse bad ``--prune-after`` settings before training starts (a one-line UserError)."""
    ratio = getattr(config, "prune_after", 0.0)
    if ratio == 0:
        return
    if not 0.0 < ratio < 1.0:
        raise UserError(
            f"--prune-after {ratio} is outside (0, 1)",
            "pass the fraction of channels to remove, e.g. 0.5, or 0",
        )
    _check_spec(
        ratio,
        None,
        None,
        getattr(config, "prune_importance", "magnitude"),
        getattr(config, "prune_iterative_steps", 1),
    )
    if getattr(config, "prune_finetune_epochs", 0) < 0 or getattr(config, "prune_lr", 0.0) < 0:
        raise UserError("--prune-finetune-epochs and --prune-lr must be >= 0", "pass 0 for the defaults")
    if getattr(config, "nproc_per_node", 0) > 1:
        raise UserError(
            "--prune-after runs in one process",
            "train without --nproc-per-node, or run tools/prune.py on the best checkpoint afterwards",
        )


def prune_after_training(
    model: nn.Module,
    card: ModelCard,
    data,
    task,
    pipeline,
    device: torch.device,
    run_dir: str | Path,
    ratio: float,
    finetune_epochs: int,
    config: Any,
    train_mode: Callable[[nn.Module], None] | None = None,
    say: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """``--prune-after RATIO``: prune a copy of the trained ``model``, fine-tune it into ``run_dir/pruning/``.

    ``config`` is the run's config; read with defaults: ``prune_importance``, ``prune_global``,
    ``prune_iterative_steps``, ``prune_lr`` (0 = the run's ``lr`` / 10), ``optimizer``, ``weight_decay``,
    ``momentum``, ``batch_size``, ``seed``, ``workers``, ``monitor``, ``monitor_mode``, ``amp``,
    ``channels_last``, ``grad_clip``, ``accumulate_steps``, ``log_every``. ``model`` itself is not changed.
    Returns the summary dict of :func:`prune_and_finetune` (for the run's ``summary.json``).
    """
    from ignite_cv.engine import StepOptions

    def get(name: str, default: Any) -> Any:
        return getattr(config, name, default)

    lr = get("prune_lr", 0.0) or get("lr", 1e-2) / 10
    options = PruneOptions(
        ratio=ratio,
        importance=get("prune_importance", "magnitude"),
        global_pruning=bool(get("prune_global", False)),
        iterative_steps=int(get("prune_iterative_steps", 1)),
        finetune_epochs=finetune_epochs,
        lr=lr,
        optimizer=get("optimizer", "adamw"),
        weight_decay=get("weight_decay", 1e-4),
        momentum=get("momentum", 0.9),
        batch_size=get("batch_size", 128),
        seed=get("seed", 0),
        workers=get("workers", 0),
        center_crop=bool(get("center_crop", False)),
        monitor=get("monitor", "auto"),
        monitor_mode=get("monitor_mode", "auto"),
        log_every=get("log_every", 50),
    )
    step_options = StepOptions(
        get("amp", "none"), get("channels_last", False), get("grad_clip", 0.0), get("accumulate_steps", 1)
    )
    copy_of_model = copy.deepcopy(unwrap(model))
    return prune_and_finetune(
        copy_of_model,
        card,
        data,
        task,
        pipeline,
        device,
        Path(run_dir) / "pruning",
        options,
        step_options,
        train_mode=train_mode,
        say=say,
    )
