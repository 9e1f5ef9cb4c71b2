"""Defaults that train: the training kind's settings for what the user did not set, and options that need
each other."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ignite_cv.config import parse_config
from ignite_cv.defaults import resolution_notes, resolve_defaults
from ignite_cv.models.options import SCRATCH_SETTINGS
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import load_recipe

RECIPE = load_recipe("resnet_finetune").ResNetFinetuneRecipe
SCRATCH = ["--mode", "scratch", "--weights", "none"]


def test_training_from_scratch_gets_scratch_settings_and_says_so():
    config = parse_config(RECIPE, SCRATCH)
    assert {k: getattr(config, k) for k in SCRATCH_SETTINGS} == SCRATCH_SETTINGS
    (note,) = resolution_notes(config)
    assert note.startswith("defaults for training from scratch (--mode scratch, --weights none): ")
    assert "--optimizer adamw" in note and "--lr 0.002" in note and "--normalize meanstd" in note
    # fine-tuning keeps the recipe's own defaults and prints nothing
    finetune = parse_config(RECIPE, [])
    assert (finetune.optimizer, finetune.lr, finetune.normalize, finetune.channels) == (
        "sgd",
        1e-4,
        "imagenet",
        3,
    )
    assert resolution_notes(finetune) == ()


def test_a_flag_the_user_passes_always_wins_and_is_not_listed():
    config = parse_config(RECIPE, [*SCRATCH, "--lr", "0.01", "--optimizer", "sgd", "--normalize", "imagenet"])
    assert (config.lr, config.optimizer, config.normalize) == (0.01, "sgd", "imagenet")
    assert config.scheduler == "onecycle"  # not set by the user: the scratch setting
    (note,) = resolution_notes(config)
    assert "--lr" not in note and "--optimizer" not in note and "--normalize" not in note


def test_config_json_of_a_resolved_run_reruns_the_same_config(tmp_path):
    config = parse_config(RECIPE, SCRATCH)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    again = parse_config(RECIPE, ["--config", str(path)])
    assert again == config and resolution_notes(again) == ()
    # a pretrained run's config switched to scratch by a flag keeps the file's settings: the file set them
    pretrained = tmp_path / "pretrained.json"
    pretrained.write_text(json.dumps(parse_config(RECIPE, []).to_dict()))
    switched = parse_config(RECIPE, ["--config", str(pretrained), *SCRATCH])
    assert (switched.optimizer, switched.lr) == ("sgd", 1e-4)


def test_finetune_epochs_make_epochs_the_sum_of_both_phases():
    config = parse_config(RECIPE, ["--warmup-epochs", "30", "--finetune-epochs", "90"])
    assert (config.epochs, config.warmup_epochs, config.finetune_epochs) == (120, 30, 90)
    assert resolution_notes(config) == ("--epochs 120: 30 warm-up + 90 fine-tuning",)
    assert (
        parse_config(RECIPE, ["--warmup-epochs", "30", "--finetune-epochs", "90", "--epochs", "120"]).epochs
        == 120
    )
    with pytest.raises(UserError, match="--epochs 100 is not --warmup-epochs 30 \\+ --finetune-epochs 90"):
        parse_config(RECIPE, ["--warmup-epochs", "30", "--finetune-epochs", "90", "--epochs", "100"])


def test_the_fine_tuning_phase_flags_have_phase_names_too():
    config = parse_config(
        RECIPE, ["--finetune-optimizer", "adam", "--finetune-lr", "1e-5", "--finetune-patience", "5"]
    )
    assert (config.optimizer, config.lr, config.patience) == ("adam", 1e-5, 5)


def test_options_that_need_each_other_are_one_line_errors():
    with pytest.raises(
        UserError, match="--focal-gamma set the focal loss, but --loss is ce; add --loss focal"
    ):
        parse_config(RECIPE, ["--focal-gamma", "3"])
    with pytest.raises(UserError, match="--class-weights balanced and --focal-alpha both weigh the classes"):
        parse_config(RECIPE, ["--loss", "focal", "--focal-alpha", "0.25", "--class-weights", "balanced"])
    with pytest.raises(UserError, match="--threshold 1.5 is not between 0 and 1"):
        parse_config(RECIPE, ["--threshold", "1.5"])
    assert parse_config(RECIPE, ["--loss", "focal", "--focal-gamma", "3"]).focal_gamma == 3.0


def test_a_config_built_in_code_is_left_as_it_is():
    built = RECIPE(mode="scratch", weights="none")
    assert resolve_defaults(built) is built
    parsed = parse_config(RECIPE, SCRATCH)
    assert resolve_defaults(replace(parsed, lr=0.5)).lr == 0.5  # replace forgets what was set: untouched
