import json
from dataclasses import dataclass

import pytest

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.models.options import MLPOptions
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import build_parser


@dataclass
class _Recipe(MLPOptions, TrainConfig):
    recipe: str = "test"
    epochs: int = 7


def test_flags_are_generated_from_fields_with_recipe_defaults():
    config = parse_config(_Recipe, [])
    assert config.epochs == 7 and config.recipe == "test"
    config = parse_config(_Recipe, ["--epochs", "3", "--batch-size", "32", "--hidden-sizes", "64,32"])
    assert (config.epochs, config.batch_size, config.hidden_sizes) == (3, 32, (64, 32))


def test_bool_flags_accept_bare_and_explicit_values():
    assert parse_config(_Recipe, ["--channels-last"]).channels_last is True
    assert parse_config(_Recipe, ["--batch-norm", "no"]).batch_norm is False


def test_unknown_choice_is_a_one_line_user_error():
    with pytest.raises(UserError, match="invalid choice.*--help"):
        parse_config(_Recipe, ["--optimizer", "lion"])
    with pytest.raises(UserError, match="--scheduler"):
        parse_config(_Recipe, ["--scheduler", "exp"])


def test_config_file_round_trip_and_flags_override_it(tmp_path):
    saved = parse_config(_Recipe, ["--epochs", "4", "--lr", "0.5", "--hidden-sizes", "8,4"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved.to_dict()))
    reloaded = parse_config(_Recipe, ["--config", str(path)])
    assert reloaded == saved
    overridden = parse_config(_Recipe, ["--config", str(path), "--epochs", "9"])
    assert overridden.epochs == 9 and overridden.lr == 0.5


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        parse_config(_Recipe, ["--config", str(tmp_path / "nope.json")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        parse_config(_Recipe, ["--config", str(bad)])


def test_help_lists_every_field_with_its_default():
    text = build_parser(_Recipe).format_help()
    for flag in (
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--scheduler",
        "--amp",
        "--data-root",
        "--augment",
    ):
        assert flag in text
    assert "global batch size" in text


def test_a_recipe_that_changes_a_default_keeps_the_choices_and_help():
    @dataclass
    class _Override(TrainConfig):
        scheduler: str = "cosine"

    with pytest.raises(UserError, match="--scheduler"):
        parse_config(_Override, ["--scheduler", "exponential"])
    assert "learning-rate schedule" in build_parser(_Override).format_help()


def test_help_keeps_a_recipes_example_commands_one_per_line():
    """Bug 5 of issue 13 (fixed on main by the raw-description formatter): examples ran together."""
    description = "A recipe.\n\n    python a.py --x 1\n    python a.py --y 2 \\\n        --z 3\n"
    text = build_parser(_Recipe, description).format_help()
    assert "\n    python a.py --x 1\n    python a.py --y 2 \\\n        --z 3\n" in text


def test_the_options_a_user_set_are_recorded_and_aliases_from_other_classes_apply(tmp_path):
    from typing import ClassVar

    from ignite_cv.utils.options import given_options

    config = parse_config(_Recipe, ["--lr", "0.1", "--epochs", "3"])
    assert given_options(config) == {"lr", "epochs"}
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"batch_size": 16, "lr": 0.2}))
    assert given_options(parse_config(_Recipe, ["--config", str(saved), "--epochs", "2"])) == {
        "batch_size",
        "lr",
        "epochs",
    }
    assert given_options(_Recipe()) is None  # built in code: nothing tells a set value from a default

    @dataclass
    class _Aliased(_Recipe):
        FLAG_ALIASES: ClassVar[dict] = {"lr": ("--finetune-lr",)}

    assert parse_config(_Aliased, ["--finetune-lr", "0.05"]).lr == 0.05
    assert "--lr LR, --finetune-lr LR" in build_parser(_Aliased).format_help()
