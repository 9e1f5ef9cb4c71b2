"""TrialPruning: Optuna's Ignite handler on scripted validation scores, stepping by the run's epoch."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import optuna
import pytest
from ignite.engine import Engine, Events

from ignite_cv.handlers.monitor import Monitor
from ignite_cv.training.loop import Timeline
from ignite_cv.tuning.pruning import PrunerSpec, TrialPruning, TrialRef, pruned_epoch

GOOD = {1: 0.80, 2: 0.85, 3: 0.90, 4: 0.92}


def study_with_good_trials(warmup_epochs: int = 0) -> optuna.Study:
    """Two finished trials that scored GOOD at every epoch; the median pruner starts after them."""
    study = optuna.create_study(direction="maximize", pruner=PrunerSpec("median", 2, warmup_epochs).build())
    for _ in range(2):
        study.add_trial(
            optuna.trial.create_trial(value=GOOD[4], intermediate_values=GOOD, params={}, distributions={})
        )
    return study


def run_scripted(hook: TrialPruning, scores: dict[int, float], timeline: Timeline, epochs: int = 4) -> Engine:
    """A trainer whose epochs end in an evaluation that reports ``scores[run epoch]``."""
    start = timeline.epoch
    evaluator = Engine(lambda engine, batch: None)
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=scores[timeline.epoch])
    )
    trainer = Engine(lambda engine, batch: None)
    trainer.add_event_handler(
        Events.EPOCH_STARTED, lambda e: setattr(timeline, "epoch", start + e.state.epoch)
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    parts = SimpleNamespace(evaluator=evaluator, monitor=Monitor("accuracy", "max"), timeline=timeline)
    handles = hook.attach(parts, SimpleNamespace(trainer=trainer))
    trainer.run([0, 1], max_epochs=epochs)
    for handle in handles:
        handle.remove()
    return trainer


def test_a_clearly_worse_trial_is_pruned_at_its_first_prunable_epoch():
    study = study_with_good_trials(warmup_epochs=1)
    trial = study.ask()
    hook = TrialPruning(trial)
    trainer = run_scripted(hook, {1: 0.30, 2: 0.35, 3: 0.40, 4: 0.45}, Timeline())
    assert hook.pruned_at == 2  # epoch 1 is the warm-up; epoch 2 is below the median
    assert trainer.state.epoch == 2
    assert study.trials[-1].intermediate_values == {1: 0.30, 2: 0.35}
    assert hook.finish(None, None) == {"stopped_by": "pruned", "pruned_at_epoch": 2}
    assert "pruned at 2 epoch" in hook.message


def test_a_good_trial_runs_to_the_end():
    study = study_with_good_trials()
    hook = TrialPruning(study.ask())
    trainer = run_scripted(hook, {1: 0.81, 2: 0.86, 3: 0.91, 4: 0.93}, Timeline())
    assert hook.pruned_at is None and trainer.state.epoch == 4 and hook.finish(None, None) == {}
    assert study.trials[-1].intermediate_values == {1: 0.81, 2: 0.86, 3: 0.91, 4: 0.93}


def test_steps_are_the_runs_epochs_and_later_phases_do_not_train():
    study = study_with_good_trials()
    hook = TrialPruning(study.ask())
    timeline = Timeline(epoch=2)  # a second phase that starts after two epochs of the run
    first = run_scripted(hook, {3: 0.50, 4: 0.99}, timeline, epochs=2)
    assert study.trials[-1].intermediate_values == {3: 0.50}  # the run's epoch 3, not the phase's 1
    assert hook.pruned_at == 3 and first.state.epoch == 1
    later = run_scripted(hook, {}, timeline, epochs=3)
    assert later.state.epoch == 0  # terminated at its start: no epoch trained


def test_the_hook_pickles_without_its_live_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    trial = study.ask()
    ref = TrialRef(storage, "s", trial._trial_id, PrunerSpec("none"))
    copy = pickle.loads(pickle.dumps(TrialPruning(trial, ref)))
    assert copy.trial is None and copy.ref == ref
    reopened = ref.open()
    reopened.report(0.5, 1)
    assert optuna.load_study(study_name="s", storage=storage).trials[0].intermediate_values == {1: 0.5}


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([{"stopped_by": "epochs"}], None),
        ([{"stopped_by": "epochs"}, {"stopped_by": "pruned", "pruned_at_epoch": 5}], 5),
    ],
)
def test_pruned_epoch_reads_the_summary(phases, expected):
    assert pruned_epoch({"phases": phases}) == expected
