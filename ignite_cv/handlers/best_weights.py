"""Keep the best model weights seen during validation, and put them back at the end of training."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine, Events
from torch import nn

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.utils.modules import unwrap


class BestWeights:
    """On each evaluation, copy the model's state when the monitored score improves; restore it on demand.

    Early stopping ends a run ``patience`` epochs after the best one; restoring makes the model that
    leaves training (and that the test split sees) the best one, as fastai's and Keras's
    ``restore_best_weights`` do. The copy lives in host memory on every rank, so it needs no file.

    Ties: the first epoch that reaches the best score stays the best; a later epoch must score strictly
    higher (as in Ignite's ``EarlyStopping`` and Keras). The best checkpoint file follows the same rule
    (:func:`ignite_cv.handlers.checkpoint.top_checkpoint_path`).
    """

    def __init__(self, model: nn.Module, monitor: Monitor) -> None:
        self.model = model
        self.monitor = monitor
        self.best_score = -math.inf
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def attach(self, evaluator: Engine, epoch_fn) -> None:
        """``epoch_fn()`` returns the global training epoch the evaluation belongs to."""
        evaluator.add_event_handler(Events.COMPLETED, self._on_evaluation, epoch_fn)

    def _on_evaluation(self, evaluator: Engine, epoch_fn) -> None:
        score = self.monitor.score(evaluator)
        if score > self.best_score or self._state is None:
            self.best_score = score
            self.best_value = self.monitor.value(evaluator)
            self.best_epoch = int(epoch_fn())
            self._state = {
                k: v.detach().to("cpu", copy=True) for k, v in unwrap(self.model).state_dict().items()
            }

    @property
    def has_best(self) -> bool:
        return self._state is not None

    def restore(self) -> None:
        """Load the best weights back into the model (no-op before the first evaluation)."""
        if self._state is not None:
            unwrap(self.model).load_state_dict(self._state)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The best weights so far (for a training state); empty before the first evaluation."""
        return dict(self._state or {})

    def summary_state(self) -> dict:
        return {"score": self.best_score, "value": self.best_value, "epoch": self.best_epoch}

    def load_summary_state(self, summary: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`summary_state` and :meth:`state_tensors` captured."""
        self.best_score = summary["score"] if summary["score"] is not None else -math.inf
        self.best_value = summary["value"]
        self.best_epoch = summary["epoch"]
        self._state = dict(tensors) if tensors else None

    def summary(self) -> dict:
        return {
            "metric": self.monitor.metric,
            "mode": self.monitor.mode,
            "value": self.best_value,
            "epoch": self.best_epoch,
        }
