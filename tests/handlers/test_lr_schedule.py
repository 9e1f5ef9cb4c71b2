import math

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_cv.handlers.lr_schedule import COSINE_FINAL_FRACTION, ScheduleOptions, attach_lr_schedule
from ignite_cv.handlers.monitor import Monitor

STEPS, EPOCHS, LR = 10, 6, 0.1


def _lrs(name, warmup=0.0, metric_values=None, **kwargs):
    """The LR seen by each iteration of a no-op trainer under schedule ``name``."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0, momentum=0.9)
    trainer = Engine(lambda e, b: None)
    evaluator = Engine(lambda e, b: None)
    values = iter(metric_values or [])
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(values, 0.0))
    )
    options = ScheduleOptions(name, LR, EPOCHS, STEPS, warmup_epochs=warmup, **kwargs)
    attach_lr_schedule(options, optimizer, trainer, evaluator, Monitor("accuracy", "max"))
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_STARTED, lambda e: seen.append(optimizer.param_groups[0]["lr"])
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    trainer.run(range(STEPS), max_epochs=EPOCHS)
    return seen


def test_none_is_constant():
    assert set(_lrs("none")) == {LR}


def test_cosine_falls_from_lr_to_its_floor_monotonically():
    lrs = _lrs("cosine")
    assert lrs[0] == pytest.approx(LR)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(LR * COSINE_FINAL_FRACTION, rel=0.05, abs=LR * 3e-3)
    assert lrs[len(lrs) // 2] == pytest.approx(LR / 2, rel=0.1)


def test_step_multiplies_by_gamma_every_step_size_epochs():
    lrs = _lrs("step", step_size=2, gamma=0.5)
    per_epoch = [lrs[e * STEPS] for e in range(EPOCHS)]
    assert per_epoch == pytest.approx([LR, LR, LR / 2, LR / 2, LR / 4, LR / 4])


def test_onecycle_rises_to_lr_then_anneals():
    lrs = _lrs("onecycle")
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(LR, rel=1e-3)
    assert 0.2 * len(lrs) <= peak <= 0.3 * len(lrs)
    assert lrs[0] < LR / 10 and lrs[-1] < LR / 100


def test_plateau_decays_after_patience_evaluations_without_improvement():
    lrs = _lrs("plateau", metric_values=[0.5, 0.6, 0.6, 0.6, 0.6, 0.6], plateau_patience=1, gamma=0.5)
    per_epoch = [lrs[e * STEPS] for e in range(EPOCHS)]
    # improves after epochs 1-2, then stalls: with patience 1 the 2nd stalled evaluation (epoch 4) decays
    assert per_epoch[:4] == pytest.approx([LR] * 4)
    assert per_epoch[-1] < LR


@pytest.mark.parametrize("name", ["cosine", "step", "none", "plateau"])
def test_linear_warmup_ramps_from_a_tenth(name):
    lrs = _lrs(name, warmup=1.0, metric_values=[1.0] * EPOCHS)
    assert lrs[0] == pytest.approx(LR / 10)
    assert all(a < b for a, b in zip(lrs[: STEPS - 1], lrs[1:STEPS]))
    assert lrs[STEPS] == pytest.approx(LR, rel=0.02)


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="unknown scheduler"):
        ScheduleOptions("exp", LR, 1, 1)
    with pytest.raises(ValueError, match="gamma"):
        ScheduleOptions("step", LR, 1, 1, gamma=0.0)
    assert math.isfinite(ScheduleOptions("cosine", LR, 2, 3).total_steps)
