"""The tuner's command line: defaults ← --config ← fixed flags for the base config, the tuner's options."""

from __future__ import annotations

import json

import pytest

from ignite_cv.recipe_loader import load_recipe_class
from ignite_cv.tuning.command import parse_tune_command, prepare_study
from ignite_cv.utils.errors import UserError

Recipe = load_recipe_class("tinyvgg")


def parse(*argv: str):
    return parse_tune_command(Recipe, list(argv), None, "tools/tune.py tinyvgg")


def test_fixed_flags_config_file_and_tuner_options(tmp_path):
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"epochs": 7, "hidden_units": 8, "lr": 0.5, "unknown_key": 1}))
    command = parse(
        "--config", str(saved), "--epochs", "3", "--trials", "5", "--pruner", "hyperband",
        "--space", "lr=log(1e-4,1e-2)", "dropout=uniform(0,0.5)", "--space", "batch_size=choice(32,64)",
    )  # fmt: skip
    assert (command.base.epochs, command.base.hidden_units, command.base.lr) == (3, 8, 0.5)
    assert (command.options.trials, command.options.pruner, command.options.heartbeat) == (5, "hyperband", 10)
    assert [p.name for p in command.space] == ["lr", "dropout", "batch_size"]
    assert not hasattr(command.base, "trials") and type(command.base) is Recipe


def test_a_searched_field_may_come_from_the_config_file_but_not_from_a_flag(tmp_path):
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"lr": 0.5}))
    assert parse("--config", str(saved), "--space", "lr=log(1e-4,1e-2)").base.lr == 0.5
    with pytest.raises(UserError, match="--lr is also given as a fixed flag"):
        parse("--lr", "0.1", "--space", "lr=log(1e-4,1e-2)")


def test_study_folder_storage_and_pruner(tmp_path):
    study, plan = prepare_study(
        parse(
            "--output-dir",
            str(tmp_path),
            "--space",
            "lr=log(1e-4,1e-2)",
            "--epochs",
            "4",
            "--pruner",
            "hyperband",
        )
    )
    assert plan.folder == tmp_path / "tinyvgg-tune" and (plan.folder / "study.db").is_file()
    assert plan.storage_url == f"sqlite:///{tmp_path / 'tinyvgg-tune' / 'study.db'}"
    assert (plan.pruner.name, plan.pruner.max_epochs, type(study.pruner).__name__) == (
        "hyperband",
        4,
        "HyperbandPruner",
    )
    assert (study.study_name, plan.metric, plan.direction) == ("tinyvgg-tune", "auto", "maximize")
    with pytest.raises(UserError, match="--study-name 'a/b' is not a folder name"):
        prepare_study(
            parse("--output-dir", str(tmp_path), "--space", "lr=log(1e-4,1e-2)", "--study-name", "a/b")
        )


def test_a_seeded_rerun_continues_the_sequence_instead_of_repeating_it(tmp_path):
    def first_draw(output_dir):
        study, plan = prepare_study(
            parse("--output-dir", str(output_dir), "--space", "lr=log(1e-4,1e-2)", "--sampler-seed", "3")
        )
        trial = study.ask()
        value = plan.space[0].suggest(trial)
        study.tell(trial, 0.5)
        return value

    first = first_draw(tmp_path / "a")
    assert first_draw(tmp_path / "b") == first  # a new seeded study is repeatable
    assert first_draw(tmp_path / "a") != first  # its rerun does not draw trial 0's values again
