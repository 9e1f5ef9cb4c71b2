"""Prune and fine-tune: measure a model, prune it, fine-tune it on the training loop, measure again.

``tools/prune.py`` and a recipe's ``--prune-after`` both call :func:`prune_and_finetune`. The
fine-tune is one phase on the shared epoch loop (:func:`ignite_cv.training.loop.run_phase`): the
training engines and handlers of a run, a cosine schedule, the best weights on validation restored
at the end. Its settings (optimizer, weight decay, batch size, monitored metric, step options...) are
the fields of the ``config`` it is given: the run's config, or the tool's options.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ignite_cv.data.placement import make_loader
from ignite_cv.engine import StepOptions, create_evaluator
from ignite_cv.evaluation import run_evaluation
from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.history import MetricsHistory
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.handlers.nonfinite import NonFiniteLossError
from ignite_cv.metrics import evaluation_metrics, scalar_metrics
from ignite_cv.phases import Phase
from ignite_cv.profile.model import count_macs_params, interleaved_latency
from ignite_cv.prune.core import HISTORY_KEY, example_input_for, prune, save_pruned
from ignite_cv.prune.options import PruneOptions
from ignite_cv.prune.report import comparison_rows, pruning_markdown
from ignite_cv.training.loop import LoopParts, run_phase
from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.text import human_count, markdown_table
from ignite_cv.weights import ModelCard, load_model

#: Fine-tuning settings read from the config, reported in ``pruning.json``.
FINETUNE_SETTINGS = ("optimizer", "weight_decay", "momentum", "batch_size", "seed", "monitor", "monitor_mode")


def prune_and_finetune(
    model: nn.Module,
    card: ModelCard,
    data,
    task,
    pipeline,
    device: torch.device,
    out_dir: str | Path,
    options: PruneOptions,
    config: Any,
    lr: float,
    train_mode: Callable[[nn.Module], None] | None = None,
    say: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Measure ``model`` (test accuracy, parameters, MACs, latency), prune it, fine-tune, measure again.

    ``model`` is pruned in place (pass a copy to keep the original). ``data`` is a
    :class:`~ignite_cv.data.splits.DataBundle`; ``pipeline`` the batch pipeline that normalises its uint8
    images like the model was trained; ``lr`` the fine-tuning peak LR; latency is measured on
    ``device``. Writes into ``out_dir``: ``pruned.safetensors`` (loadable by
    :func:`ignite_cv.weights.load_model` in any process), ``pruning.json`` (before, after, options,
    pruning summary), ``pruning.md`` (the table) and ``finetune_metrics.jsonl``. Returns the
    ``pruning.json`` content.
    """
    options.check()
    if options.finetune_epochs > 0 and not lr > 0:
        raise UserError(
            f"the fine-tuning learning rate {lr} must be positive", "pass e.g. --finetune-lr 1e-3"
        )
    step = StepOptions.from_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = say is not None  # per-epoch lines of the fine-tuning
    say = say or (lambda _message: None)
    model = unwrap(model).to(device)
    torch.manual_seed(config.seed)
    test_loader = make_loader(config, data, data.test, train=False, device=device, shard=False)

    loss_fn = (
        _taylor_loss(data, task, pipeline, device, options, config)
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
        original, card, device, _test_metrics(original, test_loader, task, pipeline, device, step)
    )
    scope = "global" if options.global_pruning else "uniform"
    say(
        f"pruning: ratio {result.ratio:.3f} ({options.importance}, {scope}): "
        f"MACs {human_count(result.macs_before)} → "
        f"{human_count(result.macs_after)} ({result.mac_reduction:.2f}× fewer), parameters "
        f"{human_count(result.params_before)} → {human_count(result.params_after)} in {prune_seconds:.1f}s"
    )
    pruned_metrics = _test_metrics(model, test_loader, task, pipeline, device, step)
    finetune: dict[str, Any] = {"epochs": 0}
    if options.finetune_epochs > 0:
        say(f"pruning: fine-tuning for {options.finetune_epochs} epochs (lr {lr:g}, cosine)")
        finetune = _finetune(
            model, data, task, pipeline, device, step, options, config, lr, out_dir, train_mode, progress
        )
    finetune["lr"] = lr
    finetune.update({name: getattr(config, name) for name in FINETUNE_SETTINGS})
    after = _measure(model, card, device, _test_metrics(model, test_loader, task, pipeline, device, step))
    say("pruning: timing both models (interleaved)")
    _add_latency([before, after], [original, model], card, device, options, config.batch_size)
    del original

    model_path = out_dir / "pruned.safetensors"
    new_card = save_pruned(model_path, model, card, result)
    reloaded, _ = load_model(model_path, device)
    probe = torch.randn(2, card.in_channels, *card.image_size, device=device)
    with torch.no_grad():
        model.eval()
        if not torch.allclose(reloaded(probe), model(probe), rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"{model_path} does not reload to the same model; please report this")

    rows = comparison_rows(before, after)
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
    write_json_atomic(out_dir / "pruning.json", summary, default=str)
    title = (
        f"Pruning: {card.arch}, ratio {result.ratio:.3f}, {options.importance}, {scope}, "
        f"{options.finetune_epochs} fine-tuning epochs"
    )
    threads = torch.get_num_threads()
    markdown = pruning_markdown(
        title, str(device), threads, options.latency_warmup, options.latency_repeats, rows
    )
    write_text_atomic(out_dir / "pruning.md", markdown)
    say(
        "pruning: before / after\n"
        + markdown_table(["", "before", "after", "after vs before"], rows).rstrip()
    )
    say(f"pruning: model saved to {model_path}")
    return summary


def prune_after_training(
    model: nn.Module,
    card: ModelCard,
    data,
    task,
    pipeline,
    device: torch.device,
    run_dir: str | Path,
    config: Any,
    train_mode: Callable[[nn.Module], None] | None = None,
    say: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """``--prune-after RATIO``: prune a copy of the trained ``model`` and fine-tune it into
    ``run_dir/pruning/``, with the run's config (:meth:`PruneOptions.from_config`; fine-tuning LR
    ``--prune-lr``, or the run's ``--lr`` / 10). ``model`` itself is not changed."""
    options = PruneOptions.from_config(config)
    lr = options.finetune_peak_lr(config.lr)
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
        config,
        lr,
        train_mode=train_mode,
        say=say,
    )


def _taylor_loss(data, task, pipeline, device, options: PruneOptions, config) -> Callable[[nn.Module], Any]:
    """A loss on the first ``taylor_samples`` training images (evaluation order: the same every call)."""
    batch = min(options.taylor_samples, len(data.train))
    loader = make_loader(config, data, data.train, train=False, device=device, batch_size=batch, shard=False)
    images, labels = next(iter(loader))
    images, labels = images.to(device), labels.to(device)
    with torch.no_grad():
        x = pipeline(images, augment=False)

    def loss_fn(model: nn.Module) -> torch.Tensor:
        return task.loss(model(x), labels)

    return loss_fn


def _test_metrics(model, loader, task, pipeline, device, step: StepOptions) -> dict[str, float]:
    metrics, _ = run_evaluation(model, task, pipeline, device, loader, step, collect=False)
    return scalar_metrics(metrics)


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


def _add_latency(
    rows: list[dict], models: list[nn.Module], card, device, options: PruneOptions, batch_size: int
) -> None:
    """Latency rows for each model at batch 1 and ``batch_size``, timed interleaved (same machine load)."""
    for batch in sorted({1, batch_size}):
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
    step,
    options: PruneOptions,
    config,
    lr: float,
    out_dir: Path,
    train_mode,
    progress,
) -> dict[str, Any]:
    """One cosine phase on the epoch loop, best-on-validation weights restored."""
    evaluator = create_evaluator(model, task, pipeline, device, step, evaluation_metrics(task, device))
    monitor = Monitor.resolve(config.monitor, config.monitor_mode, task.binary)
    history = MetricsHistory(out_dir / "finetune_metrics.jsonl")
    history.truncate(0)  # rows of an earlier, interrupted fine-tune into this folder (a resumed run's)
    parts = LoopParts(
        model=model,
        task=task,
        pipeline=pipeline,
        device=device,
        step=step,
        train_loader=make_loader(config, data, data.train, train=True, device=device, shard=False),
        val_loader=make_loader(config, data, data.val, train=False, device=device, shard=False),
        evaluator=evaluator,
        monitor=monitor,
        best=BestWeights(model, monitor),
        total_epochs=options.finetune_epochs,
        log_every=config.log_every,
        train_mode=train_mode,
        history=history,
        progress=progress,
        progress_bars=False,
    )
    parts.best.attach(evaluator, lambda: parts.timeline.epoch)
    phase = Phase(
        "prune-finetune",
        options.finetune_epochs,
        config.optimizer,
        lr,
        config.weight_decay,
        config.momentum,
        scheduler="cosine",
    )
    try:
        result = run_phase(parts, phase, 0)
    except NonFiniteLossError as err:
        raise UserError(
            f"fine-tuning the pruned model diverged ({err})", "lower the fine-tuning learning rate"
        ) from None
    parts.best.restore()
    return {"epochs": result["epochs"], "best": parts.best.summary()}
