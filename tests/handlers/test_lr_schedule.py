import json
import math

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_cv.handlers.lr_schedule import (
    COSINE_FINAL_FRACTION,
    PlateauScheduler,
    ScheduleOptions,
    attach_lr_schedule,
)
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.training_state import TrainingState, snapshot_state
from ignite_cv.utils.errors import UserError

STEPS, EPOCHS, LR = 10, 6, 0.1


def _lrs(name, warmup=0.0, metric_values=None, **kwargs):
    """The LR seen by each iteration of a no-op trainer under schedule ``name``; the evaluator's
    ``accuracy`` takes ``metric_values`` in turn, its ``loss`` is always 1.0 (never improves)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0, momentum=0.9)
    trainer = Engine(lambda e, b: None)
    evaluator = Engine(lambda e, b: None)
    values = iter(metric_values or [])
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(values, 0.0), loss=1.0)
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
    lrs = _lrs(
        "plateau",
        metric_values=[0.5, 0.6, 0.6, 0.6, 0.6, 0.6],
        plateau_patience=1,
        plateau_factor=0.5,
        plateau_metric="accuracy",
    )
    per_epoch = [lrs[e * STEPS] for e in range(EPOCHS)]
    # improves after epochs 1-2, then stalls: with patience 1 the 2nd stalled evaluation (epoch 4) decays
    assert per_epoch == pytest.approx([LR] * 4 + [LR / 2] * 2)


def test_plateau_watches_its_own_metric_not_the_monitored_one():
    # accuracy (the run's monitor) improves every epoch; the loss the schedule watches by default never
    # does: with patience 0 the LR halves after every evaluation from the second on.
    lrs = _lrs(
        "plateau", metric_values=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], plateau_patience=0, plateau_factor=0.5
    )
    per_epoch = [lrs[e * STEPS] for e in range(EPOCHS)]
    assert per_epoch == pytest.approx([LR, LR, LR / 2, LR / 4, LR / 8, LR / 16])


def _plateau(optimizer):
    return PlateauScheduler(optimizer, metric_name="loss", mode="min", factor=0.5, patience=1)


def test_plateau_state_is_plain_json_and_resumes_the_same_decisions():
    """Bug 1 of issue 13: Ignite's state_dict() held a bound method, so every run saving a training
    state crashed at the end of epoch 1 ("method cannot be stored in a training state")."""
    losses = [1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.98]
    evaluator = Engine(lambda e, b: None)

    def run(scheduler, optimizer, values):
        seen = []
        for value in values:
            evaluator.state.metrics = {"loss": value}
            scheduler(evaluator)
            seen.append(optimizer.param_groups[0]["lr"])
        return seen

    full_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    full = run(_plateau(full_opt), full_opt, losses)
    first_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    first = _plateau(first_opt)
    head = run(first, first_opt, losses[:3])
    meta = json.loads(snapshot_state(TrainingState({}, {"scheduler": first.state_dict()})).meta_json)
    resumed_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=first_opt.param_groups[0]["lr"])
    resumed = _plateau(resumed_opt)
    resumed.load_state_dict(meta["scheduler"])
    tail = run(resumed, resumed_opt, losses[3:])
    assert head + tail == full
    assert full[-1] < full[0]  # it did decay, so the resumed counters mattered


def test_a_plateau_metric_missing_from_the_evaluator_is_a_user_error():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    evaluator = Engine(lambda e, b: None)
    evaluator.state.metrics = {"accuracy": 0.5}
    with pytest.raises(
        UserError, match="--plateau-monitor 'loss' is not a validation metric; use one of: accuracy"
    ):
        _plateau(optimizer)(evaluator)


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
