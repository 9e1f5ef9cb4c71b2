"""``--log-histograms N``: per-layer weight and gradient-norm histograms in TensorBoard every N epochs.

Every N-th epoch (1-based: epochs N, 2N, ...) a hook on each trainable parameter
(``Tensor.register_post_accumulate_grad_hook``, run by autograd right after the gradient lands in
``.grad``) appends that gradient's L2 norm, a 0-d tensor on the parameter's device, to a list. Nothing
is read on the host while the epoch runs, so a GPU step never waits; the step function itself is
untouched (its ``zero_grad`` runs before Ignite's ``ITERATION_COMPLETED``, so the gradients could not be read
there). At the epoch's end the norms are stacked, copied to the host once, and written as one histogram
per parameter, ``grad_norm/<name>`` (the distribution over the epoch's backward passes), with
``weights/<name>`` (the values at the epoch's end) for every parameter. The hooks exist only during the
logged epochs; other epochs cost nothing.

Gradient accumulation: one norm per backward pass (of the gradient accumulated so far). Under fp16 AMP
the norms include the loss scale (the gradients are scaled until the optimizer step). Non-finite norms
(an fp16 overflow step) are left out of the histogram and counted in the scalar ``grad_norm_nonfinite``.
Under DDP the hooks see the local gradient before its all-reduce; attach it on rank 0 only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap


class WeightGradientHistograms:
    """Log ``model``'s weight and gradient-norm histograms to ``writer`` (a ``SummaryWriter``) every
    ``every`` epochs. ``epoch_fn()`` gives the step (default: the trainer's epoch; pass the run's epoch when
    phases continue one timeline)."""

    def __init__(
        self,
        model: nn.Module,
        writer: Any,
        every: int,
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        if every < 1:
            raise UserError(
                f"--log-histograms must be >= 1 (epochs), got {every}", "pass e.g. 5, or 0 for off"
            )
        self.model = model
        self.writer = writer
        self.every = every
        self.epoch_fn = epoch_fn
        self._norms: dict[str, list[torch.Tensor]] = {}
        self._handles: list[Any] = []

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.EPOCH_STARTED, self._start)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._finish)
        trainer.add_event_handler(Events.COMPLETED, lambda _: self._remove_hooks())
        # An EXCEPTION_RAISED handler replaces Ignite's re-raise: release the hooks, then raise it on.
        trainer.add_event_handler(Events.EXCEPTION_RAISED, self._on_exception)

    def _on_exception(self, engine: Engine, error: BaseException) -> None:
        self._remove_hooks()
        raise error

    def _epoch(self, engine: Engine) -> int:
        return int(self.epoch_fn()) if self.epoch_fn is not None else engine.state.epoch

    def _start(self, engine: Engine) -> None:
        self._remove_hooks()
        if self._epoch(engine) % self.every:
            return
        for name, param in unwrap(self.model).named_parameters():
            if param.requires_grad:
                norms = self._norms.setdefault(name, [])
                self._handles.append(param.register_post_accumulate_grad_hook(self._recorder(norms)))

    @staticmethod
    def _recorder(norms: list[torch.Tensor]) -> Callable[[torch.Tensor], None]:
        def record(param: torch.Tensor) -> None:
            if param.grad is not None:
                norms.append(torch.linalg.vector_norm(param.grad.detach()).float())

        return record

    def _finish(self, engine: Engine) -> None:
        recorded = bool(self._handles)
        self._remove_hooks()
        if not recorded:
            return
        step = self._epoch(engine)
        nonfinite = 0
        for name, norms in self._norms.items():
            if not norms:
                continue
            values = torch.stack(norms).cpu()
            finite = values[torch.isfinite(values)]
            nonfinite += len(values) - len(finite)
            if len(finite):
                self.writer.add_histogram(f"grad_norm/{name}", finite.numpy(), step)
        for name, param in unwrap(self.model).named_parameters():
            weights = param.detach().float().cpu().flatten()
            self.writer.add_histogram(f"weights/{name}", weights[torch.isfinite(weights)].numpy(), step)
        self.writer.add_scalar("grad_norm_nonfinite", nonfinite, step)
        self._norms = {}

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
