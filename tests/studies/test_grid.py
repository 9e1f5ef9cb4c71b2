"""The grid: axes from --grid text, their combinations, values typed as the recipe's flags type them,
the flags for every run per recipe, and run folder names."""

from __future__ import annotations

import pytest

from ignite_cv.studies.grid import (
    Combination,
    combinations,
    fixed_values,
    parse_axis,
    run_name,
    split_flags,
    typed_values,
)
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import load_recipe


def _classes(*names):
    found = {}
    for name in names:
        module = load_recipe(name)
        cls = next(
            v for k, v in vars(module).items() if k.endswith("Recipe") and v.__module__ == module.__name__
        )
        found[name] = cls
    return found


def test_an_axis_is_one_field_or_several_that_vary_together():
    axis = parse_axis("--init=kaiming,xavier")
    assert (axis.fields, axis.values) == (("init",), (("kaiming",), ("xavier",)))
    zipped = parse_axis("mode+unfreeze=scratch+all, finetune+1")
    assert zipped.fields == ("mode", "unfreeze")
    assert zipped.values == (("scratch", "all"), ("finetune", "1"))
    assert parse_axis("hidden-units=4").fields == ("hidden_units",)
    assert zipped.spec == "mode+unfreeze=scratch+all,finetune+1"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("init", "has no '='"),
        ("init=kaiming,", "empty value"),
        ("init=kaiming,kaiming", "repeats a value"),
        ("mode+unfreeze=scratch,finetune+1", r"one item for each of mode\+unfreeze"),
        ("mode+mode=a+b", "names a field twice"),
        ("recipe=mlp,tinyvgg", "not how recipes vary"),
        ("output_dir=a,b", "set by the study itself"),
        ("=a,b", "empty field name"),
    ],
)
def test_a_malformed_axis_is_a_one_line_error(spec, problem):
    with pytest.raises(UserError, match=problem) as info:
        parse_axis(spec)
    assert "\n" not in str(info.value)


def test_combinations_are_every_recipe_times_the_cross_product_last_axis_fastest():
    axes = [parse_axis("init=kaiming,xavier"), parse_axis("lr+epochs=0.1+2,0.01+3,0.001+4")]
    combos = combinations(["mlp", "tinyvgg"], axes)
    assert len(combos) == 2 * 2 * 3
    assert combos[0] == Combination("mlp", (("init", "kaiming"), ("lr", "0.1"), ("epochs", "2")))
    assert combos[1].values == {"init": "kaiming", "lr": "0.01", "epochs": "3"}
    assert combos[3].values["init"] == "xavier"
    assert [c.recipe for c in combos] == ["mlp"] * 6 + ["tinyvgg"] * 6
    assert len(set(combos)) == 12
    with pytest.raises(UserError, match="appears in"):
        combinations(["mlp"], [parse_axis("init=kaiming"), parse_axis("init+lr=xavier+0.1")])


def test_values_are_typed_and_checked_like_the_recipes_flags():
    classes = _classes("mlp", "tinyvgg")
    combo = Combination(
        "tinyvgg", (("epochs", "3"), ("lr", "1e-3"), ("batch_norm", "no"), ("init", "xavier"))
    )
    values = typed_values(classes["tinyvgg"], "tinyvgg", combo)
    assert values == {"epochs": 3, "lr": 0.001, "batch_norm": False, "init": "xavier"}
    assert typed_values(classes["mlp"], "mlp", Combination("mlp", (("hidden_sizes", "16 8"),))) == {
        "hidden_sizes": (16, 8)
    }
    bad = [
        (("epochs", "2.5"), "--epochs must be a whole number"),
        (("init", "he"), "unknown --init 'he'"),
        (("lr", "-1"), "below its minimum"),
        (("hidden_units", "4"), "recipe mlp has no option --hidden-units"),
    ]
    for texts, problem in bad:
        with pytest.raises(UserError, match=problem):
            typed_values(classes["mlp"], "mlp", Combination("mlp", (texts,)))


def test_flags_for_every_run_go_to_the_recipes_that_have_them():
    classes = _classes("mlp", "tinyvgg")
    chunks = split_flags(["--epochs", "2", "--hidden-units=4", "--deterministic", "--amp", "bf16"])
    assert chunks == [["--epochs", "2"], ["--hidden-units=4"], ["--deterministic"], ["--amp", "bf16"]]
    values = fixed_values(classes, chunks)
    assert values["tinyvgg"] == {"epochs": 2, "hidden_units": 4, "deterministic": True, "amp": "bf16"}
    assert values["mlp"] == {"epochs": 2, "deterministic": True, "amp": "bf16"}
    with pytest.raises(UserError, match="unknown flag --nonsense"):
        fixed_values(classes, split_flags(["--nonsense", "1"]))
    with pytest.raises(UserError, match="set by the study"):
        fixed_values(classes, split_flags(["--run-name", "x"]))
    with pytest.raises(UserError, match="invalid choice"):
        fixed_values(classes, split_flags(["--amp", "fp64"]))
    with pytest.raises(UserError, match="unexpected argument 'stray'"):
        split_flags(["stray", "--epochs", "2"])


def test_run_names_show_the_values_and_never_collide():
    plain = Combination("tinyvgg", (("init", "kaiming"), ("lr", "0.01")))
    assert run_name(plain, several_recipes=False) == "init=kaiming_lr=0.01"
    assert run_name(plain, several_recipes=True) == "tinyvgg_init=kaiming_lr=0.01"
    a = Combination("resnet_finetune", (("weights", "/a/best.safetensors"),))
    b = Combination("resnet_finetune", (("weights", "/b/best.safetensors"),))
    name_a, name_b = run_name(a, False), run_name(b, False)
    assert name_a.startswith("weights=best-") and name_b.startswith("weights=best-")
    assert name_a != name_b and "/" not in name_a
    assert run_name(Combination("mlp", ()), False) == "mlp"
