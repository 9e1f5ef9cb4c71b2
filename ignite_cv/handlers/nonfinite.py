"""Stop training when the loss becomes NaN or infinite, without a host sync every iteration.

Ignite's ``TerminateOnNan`` reads the loss on the host after every iteration, which stalls a GPU.
This handler folds ``isfinite(loss)`` into a flag on the device each iteration and the first bad
iteration number with it, and only reads them every ``check_every`` iterations and at epoch end.
On the CPU there is no device to stall, and reading the loss costs about a microsecond against the
five small tensor operations of the flag, so there the loss is read each iteration.
"""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine, Events


class NonFiniteLossError(RuntimeError):
    """Raised after termination so the run ends with a message naming the epoch and iteration."""


class TerminateOnNonFiniteLoss:
    def __init__(
        self, check_every: int = 50, epoch_offset: int = 0, read_on_host: bool | None = None
    ) -> None:
        """``epoch_offset``: epochs run by earlier phases, so messages give the run's epoch.
        ``read_on_host``: read each loss on the host (default: when the loss is on the CPU)."""
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.check_every = check_every
        self.epoch_offset = epoch_offset
        self.read_on_host = read_on_host
        self._first_bad: torch.Tensor | None = None
        self._first_bad_host = 0  # the same, recorded on the host (CPU losses)
        self.bad_epoch: int | None = None
        self.bad_iteration: int | None = None

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._record)
        trainer.add_event_handler(Events.ITERATION_COMPLETED(every=self.check_every), self.check)
        # Checked before anything else reacts to the epoch's end (checkpoints, evaluation).
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self.check)

    def _record(self, trainer: Engine) -> None:
        loss = trainer.state.output["loss"]
        on_host = loss.device.type == "cpu" if self.read_on_host is None else self.read_on_host
        if on_host:
            if not self._first_bad_host and not math.isfinite(loss.item()):
                self._first_bad_host = trainer.state.iteration
            return
        if self._first_bad is None:
            self._first_bad = torch.zeros((), dtype=torch.long, device=loss.device)
        # In place, no allocation of an iteration tensor: first_bad = iteration where the loss is
        # non-finite and nothing was recorded before (first_bad == 0 keeps its first value).
        newly_bad = (~torch.isfinite(loss)) & (self._first_bad == 0)
        self._first_bad.add_(newly_bad.long() * trainer.state.iteration)

    def check(self, trainer: Engine) -> None:
        """Read the device flag (one host sync); terminate and raise if a loss was not finite."""
        first_bad = self._first_bad_host
        if not first_bad and self._first_bad is not None:
            first_bad = int(self._first_bad.item())
        if first_bad:
            per_epoch = trainer.state.epoch_length or 1
            self.bad_iteration = first_bad
            self.bad_epoch = self.epoch_offset + (first_bad - 1) // per_epoch + 1
            trainer.terminate()
            raise NonFiniteLossError(
                f"the loss became NaN/inf at epoch {self.bad_epoch}, iteration {first_bad} of that phase"
            )
