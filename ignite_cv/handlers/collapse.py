"""A warning when the model has collapsed onto one class: every validation prediction the same class.

Accuracy then equals that class's share of the validation split (the majority share, when it is the
majority) and macro F1 sits at its floor, which a loss curve does not make obvious. A validation whose
ROC-AUC is at least :data:`RANKING_AUC` is not counted: its scores rank the classes, only the decision
is not settled yet (common in a from-scratch run's first epochs). After
``epochs`` consecutive validations like that, one line says so, with the likely causes and the flags to
try; it is said once per run. Read from the validation confusion matrix already on the evaluator (one
small host copy per epoch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.engine import Engine, Events

#: Consecutive collapsed validations before the warning, at least.
COLLAPSE_EPOCHS = 3
#: A validation ROC-AUC from which the scores still rank the classes: predictions that all fall into
#: one class are then a threshold (or batch-norm statistics) not yet settled, not a model that learned
#: nothing. Constant scores have a ROC-AUC of 0.5.
RANKING_AUC = 0.6


def collapse_epochs(planned_epochs: int) -> int:
    """How many collapsed validations in a row the warning waits for: a quarter of the planned epochs,
    at least :data:`COLLAPSE_EPOCHS`. A network trained from scratch often predicts one class for its
    first epochs (batch-norm statistics still settling, a one-cycle warm-up) and then learns: on 500
    PneumoniaMNIST images, ResNet-18 predicted one class for 3 of 20 epochs and ended at ROC-AUC 0.9."""
    return max(COLLAPSE_EPOCHS, int(planned_epochs) // 4)


COLLAPSE_HINT = (
    "likely causes: the learning rate (try --lr 10x lower or higher) or class imbalance (try "
    "--class-weights balanced, --sampler balanced or --loss focal)"
)


class CollapseWarning:
    """Count consecutive validations whose predictions all fall into one class; warn at ``epochs``."""

    def __init__(
        self,
        class_names: list[str],
        say: Callable[[str], None],
        epoch_fn: Callable[[], int],
        epochs: int = COLLAPSE_EPOCHS,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.class_names = list(class_names)
        self.say = say
        self.epoch_fn = epoch_fn
        self.epochs = epochs
        self.streak = 0
        self.warned_at: int | None = None

    def attach(self, evaluator: Engine):
        """Add the check to the evaluator (``Events.COMPLETED``); returns the handle to remove it."""
        return evaluator.add_event_handler(Events.COMPLETED, self)

    def __call__(self, evaluator: Engine) -> None:
        matrix = evaluator.state.metrics.get("confusion_matrix")
        if not isinstance(matrix, torch.Tensor) or matrix.numel() == 0:
            return
        predicted = matrix.detach().to("cpu", torch.float64).sum(dim=0)
        classes = torch.nonzero(predicted).flatten().tolist()
        auc = evaluator.state.metrics.get("roc_auc")
        ranks = auc is not None and float(auc) >= RANKING_AUC  # one class called, but scores that rank
        if len(classes) != 1 or ranks:
            self.streak = 0
            return
        self.streak += 1
        if self.streak < self.epochs or self.warned_at is not None:
            return
        self.warned_at = int(self.epoch_fn())
        only = classes[0]
        counts = matrix.detach().to("cpu", torch.float64)
        share = float(counts[only].sum() / counts.sum())  # the accuracy of calling everything `only`
        f1 = evaluator.state.metrics.get("f1_macro")
        f1_text = f", macro F1 {float(f1):.3f}" if f1 is not None else ""
        self.say(
            f"warning: for {self.streak} epochs every validation prediction has been a single class "
            f"(now {self.class_names[only]!r}: accuracy {share:.3f} = its share{f1_text}): the model has "
            f"collapsed onto one class; {COLLAPSE_HINT}"
        )

    def state(self) -> dict:
        return {"streak": self.streak, "warned_at": self.warned_at}
