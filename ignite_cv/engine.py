"""Trainer and evaluator: Ignite Engines with ignite_cv's own step functions.

A training step moves the uint8 batch to the device (non-blocking), runs the batch pipeline
(float conversion, augmentation, normalization), the forward pass under autocast, the loss, and
the backward pass; the optimizer steps every ``accumulate_steps`` batches after optional gradient
clipping. The step returns detached tensors only — nothing in it waits for the device — so metrics
and logging decide when (rarely) to synchronise.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from ignite.engine import Engine, Events
from torch import nn

from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class StepOptions:
    """How a step computes. ``grad_clip`` is a max global L2 norm (0 = off)."""

    amp: str = "none"
    channels_last: bool = False
    grad_clip: float = 0.0
    accumulate_steps: int = 1

    @classmethod
    def from_config(cls, config) -> StepOptions:
        """The step settings of a config or a tool's options; fields it lacks stay off."""
        return cls(
            **{f.name: getattr(config, f.name) for f in dataclasses.fields(cls) if hasattr(config, f.name)}
        )

    def __post_init__(self) -> None:
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {sorted(AMP_DTYPES)}, got {self.amp!r}")
        if self.accumulate_steps < 1:
            raise ValueError(f"accumulate_steps must be >= 1, got {self.accumulate_steps}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")


def make_grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (bf16 has float32's range and needs no scaling)."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")


class _BatchPreparer:
    """Moves a ``(uint8 images, labels)`` batch to the device and runs the batch pipeline."""

    def __init__(self, pipeline: BatchPipeline, device: torch.device, options: StepOptions) -> None:
        self.pipeline = pipeline
        self.device = device
        self.options = options
        self.autocast_dtype = AMP_DTYPES[options.amp]

    def __call__(self, batch, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        x = self.pipeline(images, augment=augment)
        if self.options.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def create_trainer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task: ClassificationTask,
    pipeline: BatchPipeline,
    device: torch.device,
    options: StepOptions,
    scaler: torch.amp.GradScaler | None = None,
    train_mode: Callable[[nn.Module], None] | None = None,
) -> Engine:
    """An Engine whose step trains ``model`` on one batch. Output: ``{"loss", "logits", "scores", "y"}``.

    ``train_mode(model)`` puts the model in training mode at each epoch start (default
    ``model.train()``); fine-tuning passes one that keeps frozen BatchNorm layers in eval mode.
    """
    prepare = _BatchPreparer(pipeline, device, options)
    scaler = scaler if scaler is not None else make_grad_scaler(device, options.amp)
    accumulate = options.accumulate_steps
    set_mode = train_mode or (lambda m: m.train())
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def train_step(engine: Engine, batch) -> dict[str, torch.Tensor]:
        x, y = prepare(batch, augment=True)
        step_now = engine.state.iteration % accumulate == 0
        # Under DDP, skip the gradient all-reduce on batches that only accumulate.
        sync = contextlib.nullcontext() if step_now or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with prepare.autocast():
                logits = model(x)
            loss = task.loss(logits, y)
            # Accumulated gradients average over the batches (no division, and no extra autograd
            # node, when every batch steps).
            scaler.scale(loss / accumulate if accumulate > 1 else loss).backward()
        if step_now:
            if options.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        logits = logits.detach().float()
        return {"loss": loss.detach(), "logits": logits, "scores": task.class_scores(logits), "y": y}

    trainer = Engine(train_step)
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: set_mode(model))
    optimizer.zero_grad(set_to_none=True)
    return trainer


def create_evaluator(
    model: nn.Module,
    task: ClassificationTask,
    pipeline: BatchPipeline,
    device: torch.device,
    options: StepOptions,
    metrics: dict | None = None,
) -> Engine:
    """An Engine that evaluates ``model`` without augmentation. Output: ``{"logits", "scores", "y"}``."""
    prepare = _BatchPreparer(pipeline, device, options)

    @torch.inference_mode()
    def eval_step(engine: Engine, batch) -> dict[str, torch.Tensor]:
        x, y = prepare(batch, augment=False)
        with prepare.autocast():
            logits = model(x)
        logits = logits.float()
        return {"logits": logits, "scores": task.class_scores(logits), "y": y}

    evaluator = Engine(eval_step)
    evaluator.add_event_handler(Events.STARTED, lambda _: model.eval())
    for name, metric in (metrics or {}).items():
        metric.attach(evaluator, name)
    return evaluator
