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


# --- every field checked by its declared type and range (issue 19) -------------------------------

#: (flags, the flag the one-line error must name): bad values for fields of every option class.
BAD_FLAGS = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-3"], "--epochs"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--keep-states", "0"], "--keep-states"),
    (["--keep-best", "0"], "--keep-best"),
    (["--log-every", "0"], "--log-every"),
    (["--accumulate-steps", "0"], "--accumulate-steps"),
    (["--dropout", "2"], "--dropout"),
    (["--patience", "-1"], "--patience"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--image-grid-every", "-1"], "--image-grid-every"),
    (["--nproc-per-node", "-1"], "--nproc-per-node"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "12.5"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--image-size", "-1"], "--image-size"),
    (["--image-size", "100000"], "--image-size"),
    (["--channels", "2"], "--channels"),
    (["--workers", "-1"], "--workers"),
    (["--hidden-sizes", "0"], "--hidden-sizes"),
    (["--hidden-sizes", "a,b"], "--hidden-sizes"),
    (["--aug-flip-p", "2"], "--aug-flip-p"),
    (["--aug-hue", "0.7"], "--aug-hue"),
    (["--gcn-scale", "0"], "--gcn-scale"),
    (["--momentum", "2"], "--momentum"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--prune-after", "2"], "--prune-after"),
    (["--prune-finetune-epochs", "-1"], "--prune-finetune-epochs"),
    (["--prune-iterative-steps", "0"], "--prune-iterative-steps"),
    (["--profile-trace-steps", "0"], "--profile-trace-steps"),
    (["--deterministic", "maybe"], "--deterministic"),
    (["--optimizer", "lion"], "--optimizer"),
]


@pytest.mark.parametrize(("flags", "named"), BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_a_bad_flag_value_is_one_line_naming_the_flag(flags, named):
    with pytest.raises(UserError) as caught:
        parse_config(_Recipe, flags)
    message = str(caught.value)
    assert named in message and "\n" not in message


#: (JSON values, the flag the error must name): wrong types read from --config.
BAD_CONFIG = [
    ({"epochs": "ten"}, "--epochs"),
    ({"batch_size": 12.5}, "--batch-size"),
    ({"lr": None}, "--lr"),
    ({"deterministic": "no"}, "--deterministic"),
    ({"batch_norm": 1}, "--batch-norm"),
    ({"epochs": True}, "--epochs"),
    ({"epochs": 0}, "--epochs"),
    ({"hidden_sizes": "64"}, "--hidden-sizes"),
    ({"hidden_sizes": [64, 0]}, "--hidden-sizes"),
    ({"optimizer": "lion"}, "--optimizer"),
    ({"lr": "1e-3"}, "--lr"),
    ({"epochz": 3}, "epochz"),
]


@pytest.mark.parametrize(("values", "named"), BAD_CONFIG, ids=[json.dumps(v) for v, _ in BAD_CONFIG])
def test_a_bad_config_file_value_is_one_line_naming_the_field(tmp_path, values, named):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    with pytest.raises(UserError) as caught:
        parse_config(_Recipe, ["--config", str(path)])
    assert named in str(caught.value)


def test_a_config_file_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="JSON object"):
        parse_config(_Recipe, ["--config", str(path)])


def test_a_config_built_in_python_is_checked_like_flags():
    from ignite_cv.utils.options import check_options

    with pytest.raises(UserError, match="--epochs 0 is below its minimum 1"):
        check_options(_Recipe(epochs=0))
    with pytest.raises(UserError, match="--hidden-sizes must be a list of whole numbers"):
        check_options(_Recipe(hidden_sizes=(64, 1.5)))
    config = _Recipe(hidden_sizes=[64, 32])  # a JSON-style list becomes the declared tuple
    check_options(config)
    assert config.hidden_sizes == (64, 32)


def test_changed_options_are_the_flags_or_for_python_configs_the_changed_fields():
    from ignite_cv.utils.options import changed_options

    assert changed_options(parse_config(_Recipe, ["--epochs", "7", "--lr", "0.1"])) == {"epochs", "lr"}
    assert changed_options(_Recipe(lr=0.5)) == {"lr"}


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
