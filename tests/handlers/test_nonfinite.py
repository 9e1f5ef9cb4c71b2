import pytest
import torch
from ignite.engine import Engine

from ignite_cv.handlers.nonfinite import NonFiniteLossError, TerminateOnNonFiniteLoss


def test_stops_and_names_the_first_bad_epoch_and_iteration():
    losses = [1.0] * 13 + [float("nan")] + [1.0] * 5 + [float("inf")] + [1.0] * 20
    trainer = Engine(lambda e, b: {"loss": torch.tensor(losses[e.state.iteration - 1])})
    TerminateOnNonFiniteLoss(check_every=4).attach(trainer)
    with pytest.raises(NonFiniteLossError, match="epoch 2, iteration 14"):
        trainer.run(range(10), max_epochs=3)
    assert trainer.state.iteration == 16  # noticed at the next check, not every iteration


def test_finite_losses_run_to_the_end():
    trainer = Engine(lambda e, b: {"loss": torch.tensor(0.1)})
    TerminateOnNonFiniteLoss(check_every=2).attach(trainer)
    trainer.run(range(5), max_epochs=2)
    assert trainer.state.epoch == 2
