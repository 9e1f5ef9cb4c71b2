"""Recipe names and paths to config classes, importable by name (as spawned processes re-import them)."""

from __future__ import annotations

import pickle
import sys

import pytest

from ignite_cv.config import TrainConfig
from ignite_cv.recipe_loader import load_recipe_class, recipe_path
from ignite_cv.utils.errors import UserError
from tests.recipe_utils import REPO


def test_names_and_paths_give_the_recipes_config_class():
    by_name = load_recipe_class("tinyvgg")
    assert by_name.__name__ == "TinyVGGRecipe" and issubclass(by_name, TrainConfig)
    assert load_recipe_class(str(REPO / "recipes" / "tinyvgg.py")) is by_name
    assert sys.modules[by_name.__module__].__file__ == str(REPO / "recipes" / "tinyvgg.py")
    config = by_name(lr=0.01)
    assert pickle.loads(pickle.dumps(config)) == config  # by module name: what spawn needs
    assert recipe_path("resnet_finetune") == REPO / "recipes" / "resnet_finetune.py"


def test_bad_recipes_are_one_line_errors(tmp_path):
    with pytest.raises(
        UserError, match="no recipe named 'vgg'; pass one of: alexnet, mlp, resnet_finetune, tinyvgg"
    ):
        load_recipe_class("vgg")
    with pytest.raises(UserError, match="recipe script .*missing.py does not exist"):
        load_recipe_class(str(tmp_path / "missing.py"))
    two = tmp_path / "two_configs.py"
    two.write_text(
        "from dataclasses import dataclass\nfrom ignite_cv.config import TrainConfig\n"
        "@dataclass\nclass A(TrainConfig): pass\n@dataclass\nclass B(TrainConfig): pass\n"
    )
    with pytest.raises(UserError, match="defines 2 config classes"):
        load_recipe_class(str(two))
    shadow = tmp_path / "json.py"  # named like a module Python already has
    shadow.write_text("")
    with pytest.raises(UserError, match="is named like the module 'json'.*rename the recipe script"):
        load_recipe_class(str(shadow))
