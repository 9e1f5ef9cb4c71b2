"""The --space language: kinds by field type, bounds checked like flags, one-line errors."""

from __future__ import annotations

import optuna
import pytest

from ignite_cv.tuning.options import TUNER_FIELDS
from ignite_cv.tuning.space import SearchParam, parse_space
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import load_recipe

Recipe = load_recipe("tinyvgg").TinyVGGRecipe


def parse(*specs: str, fixed=()) -> list[SearchParam]:
    return parse_space(specs, Recipe, reserved=TUNER_FIELDS, fixed=fixed)


def test_kinds_follow_the_field_types():
    lr, batch, dropout, hidden, optimizer, amp = parse(
        "lr=log(1e-5,1e-1)",
        "batch_size=choice(32, 64, 128)",
        "dropout=uniform(0,0.5)",
        "hidden_units=log(8,64)",
        "optimizer=choice(adamw,sgd)",
        "channels_last=choice(true,false)",
    )
    assert lr == SearchParam("lr", "log", 1e-5, 1e-1) and isinstance(lr.low, float)
    assert batch == SearchParam("batch_size", "choice", choices=(32, 64, 128), integer=True)
    assert dropout == SearchParam("dropout", "uniform", 0.0, 0.5) and isinstance(dropout.low, float)
    assert hidden == SearchParam("hidden_units", "log", 8, 64, integer=True)
    assert optimizer.choices == ("adamw", "sgd") and amp.choices == (True, False)


def test_steps_and_dashed_names():
    (step,) = parse("label-smoothing=uniform(0, 0.2, 0.05)")
    assert (step.name, step.step) == ("label_smoothing", 0.05)
    (epochs,) = parse("epochs=uniform(2, 8, 2)")
    assert (epochs.integer, epochs.step, type(epochs.step)) == (True, 2, int)


def test_suggestions_are_typed_and_within_bounds():
    space = parse("lr=log(1e-4,1e-2)", "hidden_units=uniform(4,16,4)", "batch_size=choice(32,64)")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = {p.name: p.suggest(trial) for p in space}
        assert 1e-4 <= values["lr"] <= 1e-2 and isinstance(values["lr"], float)
        assert values["hidden_units"] in (4, 8, 12, 16) and isinstance(values["hidden_units"], int)
        assert values["batch_size"] in (32, 64)
        study.tell(trial, 0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lrr=log(1e-5,1e-1)", "the config has no field 'lrr'; did you mean 'lr'?"),
        ("lr=log(1e-5)", "log() takes LOW, HIGH"),
        ("lr=normal(0,1)", "unknown kind 'normal'"),
        ("lr 1e-3", "is not NAME=KIND(ARGS)"),
        ("batch_size=uniform(16.5,64)", "'batch_size' is an int field, bound 16.5 is not a whole number"),
        ("lr=uniform(a,1e-1)", "bounds of 'lr' must be numbers, got 'a'"),
        ("lr=log(0,1e-1)", "--lr 0.0 is below its minimum 1e-12"),
        ("lr=log(1e-1,1e-3)", "LOW 0.1 is not below HIGH 0.001"),
        ("dropout=log(0,0.5)", "log() needs LOW > 0, got 0.0"),
        ("label_smoothing=uniform(0,1.5)", "--label-smoothing 1.5 is above its maximum 0.99"),
        ("optimizer=uniform(0,1)", "'optimizer' is a str field, uniform() draws numbers"),
        ("optimizer=choice(adamw,rmsprop)", "unknown --optimizer 'rmsprop'"),
        ("batch_size=choice(32,64.5)", "--batch-size must be a whole number, got 64.5"),
        ("channels_last=choice(yes)", "--channels-last must be true or false"),
        ("hidden_units=uniform(4,16,0.5)", "STEP must be a whole number > 0"),
        ("run_name=choice(a,b)", "'run_name' is set by the tuner for each trial"),
        ("batch_size=choice()", "choice() needs at least one value"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(UserError) as err:
        parse(spec)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"--space {spec!r}") or "NAME=KIND" in str(err.value)


def test_a_field_searched_twice_or_also_fixed_is_refused():
    with pytest.raises(UserError, match="searches 'lr' twice"):
        parse("lr=log(1e-4,1e-2)", "lr=uniform(1e-4,1e-2)")
    with pytest.raises(UserError, match="--lr is also given as a fixed flag"):
        parse("lr=log(1e-4,1e-2)", fixed={"lr"})
