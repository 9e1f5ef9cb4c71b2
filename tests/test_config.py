"""The training config: composed of each concern's options; a recipe's flags are only its own model's."""

from __future__ import annotations

import dataclasses

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.models.options import MLPOptions, TinyVGGOptions, TransferOptions
from ignite_cv.utils.options import build_parser
from tests.recipe_utils import load_recipe

MODEL_FIELDS = {  # every family starts from --weights (its head replaced: another class count works)
    "mlp": {"hidden_sizes", "batch_norm", "dropout", "weights"},
    "tinyvgg": {"hidden_units", "batch_norm", "dropout", "weights"},
    "resnet_finetune": {"dropout", "head_hidden", "weights", "mode", "unfreeze", "warmup_epochs", "head_lr"},
}
OTHER_MODELS_ONLY = {
    "hidden_sizes",
    "hidden_units",
    "head_hidden",
    "mode",
    "unfreeze",
    "warmup_epochs",
}


def _flags(cls) -> set[str]:
    return {a.dest for a in build_parser(cls)._actions if a.dest not in ("help", "config")}


def test_each_recipe_shows_only_its_own_models_fields():
    for name, recipe_cls in (
        ("mlp", load_recipe("mlp").MLPRecipe),
        ("tinyvgg", load_recipe("tinyvgg").TinyVGGRecipe),
        ("resnet_finetune", load_recipe("resnet_finetune").ResNetFinetuneRecipe),
    ):
        flags = _flags(recipe_cls)
        assert MODEL_FIELDS[name] <= flags, name
        assert (OTHER_MODELS_ONLY - MODEL_FIELDS[name]) & flags == set(), name


def test_the_model_choice_is_limited_to_the_recipes_family():
    tinyvgg = load_recipe("tinyvgg").TinyVGGRecipe
    choices = next(a.choices for a in build_parser(tinyvgg)._actions if a.dest == "model")
    assert tuple(choices) == ("tinyvgg",)
    resnet = load_recipe("resnet_finetune").ResNetFinetuneRecipe
    assert parse_config(resnet, ["--model", "resnet34"]).model == "resnet34"


def test_a_config_holds_every_concern_and_round_trips_through_its_dict():
    @dataclasses.dataclass
    class _All(MLPOptions, TrainConfig):
        pass

    config = parse_config(_All, ["--epochs", "3", "--prune-after", "0.25", "--profile", "--augment", "flip"])
    names = {f.name for f in dataclasses.fields(config)}
    concerns = {"dataset", "augment", "optimizer", "device", "monitor", "resume", "profile", "prune_after"}
    assert concerns <= names
    assert _All(**config.to_dict()) == config


def test_model_option_classes_do_not_share_fields_they_do_not_mean():
    assert "hidden_units" not in {f.name for f in dataclasses.fields(TransferOptions)}
    assert "mode" not in {f.name for f in dataclasses.fields(TinyVGGOptions)}
    # --weights means the same for every family: declared once, in InitialWeightsOptions
    from ignite_cv.models.options import InitialWeightsOptions

    assert all(issubclass(c, InitialWeightsOptions) for c in (MLPOptions, TinyVGGOptions, TransferOptions))
