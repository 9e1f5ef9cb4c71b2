"""Stop training when the loss becomes NaN or infinite, without a host sync every iteration.

Ignite's ``TerminateOnNan`` reads the loss on the host after every iteration, which stalls a GPU.
This handler only keeps each iteration's loss tensor (a list append: no tensor operation, which
after a small CPU step costs tens of microseconds) and checks them all at once every
``check_every`` iterations and at epoch end: one stack, one ``isfinite``, one host read. The first
non-finite iteration is still named exactly.
"""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events


class NonFiniteLossError(RuntimeError):
    """Raised after termination so the run ends with a message naming the epoch and iteration."""


class TerminateOnNonFiniteLoss:
    def __init__(self, check_every: int = 50, epoch_offset: int = 0) -> None:
        """``check_every``: iterations between checks (each is one host sync);
        ``epoch_offset``: epochs run by earlier phases, so messages give the run's epoch."""
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.check_every = check_every
        self.epoch_offset = epoch_offset
        self._unchecked: list[tuple[int, torch.Tensor]] = []  # (iteration, loss) since the last check
        self.bad_epoch: int | None = None
        self.bad_iteration: int | None = None

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._record)
        trainer.add_event_handler(Events.ITERATION_COMPLETED(every=self.check_every), self.check)
        # Checked before anything else reacts to the epoch's end (checkpoints, evaluation).
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self.check)

    def _record(self, trainer: Engine) -> None:
        self._unchecked.append((trainer.state.iteration, trainer.state.output["loss"]))

    def check(self, trainer: Engine) -> None:
        """Check the losses recorded since the last check (one host sync); terminate and raise at
        the first that is not finite."""
        if not self._unchecked:
            return
        iterations, losses = zip(*self._unchecked)
        self._unchecked = []
        bad = ~torch.isfinite(torch.stack(losses))  # the step's losses: detached 0-d tensors
        if not bool(bad.any()):
            return
        first_bad = iterations[int(bad.nonzero()[0, 0])]
        per_epoch = trainer.state.epoch_length or 1
        self.bad_iteration = first_bad
        self.bad_epoch = self.epoch_offset + (first_bad - 1) // per_epoch + 1
        trainer.terminate()
        raise NonFiniteLossError(
            f"the loss became NaN/inf at epoch {self.bad_epoch}, iteration {first_bad} of that phase"
        )
