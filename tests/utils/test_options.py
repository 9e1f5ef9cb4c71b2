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


def test_a_flag_with_a_const_may_be_given_alone():
    assert parse_config(_Recipe, []).lr_find == "off"
    assert parse_config(_Recipe, ["--lr-find"]).lr_find == "suggest"
    assert parse_config(_Recipe, ["--lr-find", "apply", "--epochs", "2"]).lr_find == "apply"
    with pytest.raises(UserError, match="invalid choice"):
        parse_config(_Recipe, ["--lr-find", "always"])


def test_text_is_read_as_a_flag_reads_it():
    from ignite_cv.utils.options import parse_text

    assert parse_text(_Recipe, "epochs", "4") == 4
    assert parse_text(_Recipe, "hidden_sizes", "64 32") == (64, 32)
    assert parse_text(_Recipe, "channels_last", "yes") is True
    for name, text, problem in [
        ("epochs", "4.5", "--epochs must be a whole number, got '4.5'"),
        ("lr", "fast", "--lr must be a number"),
        ("channels_last", "maybe", "--channels-last: expected yes/no"),
        ("epochs", "0", "below its minimum"),
        ("train_metrics", "some", "unknown --train-metrics 'some'"),
    ]:
        with pytest.raises(UserError, match=problem):
            parse_text(_Recipe, name, text)
