"""Find a recipe's config class from its name (``tinyvgg``) or its script's path (``recipes/tinyvgg.py``).

Recipes are scripts, not a package. A tool that runs a recipe's config (the tuner) imports the script
as a module named after its file, with the script's folder on ``sys.path``: processes spawned for a
distributed run re-import it by that name when they unpickle the config.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from ignite_cv.config import TrainConfig
from ignite_cv.utils.errors import UserError

#: The repository's recipes (present in a clone or an editable install).
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipe_path(recipe: str) -> Path:
    """The script of ``recipe``: a path to a ``.py`` file, or the name of one in ``recipes/``."""
    path = Path(recipe)
    if recipe.endswith(".py") or len(path.parts) > 1:
        if not path.is_file():
            raise UserError(f"recipe script {recipe} does not exist", "pass a path to a recipe .py file")
        return path.resolve()
    candidate = RECIPES / f"{recipe}.py"
    if not candidate.is_file():
        names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.py"))) or "none found"
        raise UserError(f"no recipe named {recipe!r}", f"pass one of: {names}, or a path to a recipe script")
    return candidate


def load_recipe_class(recipe: str) -> type[TrainConfig]:
    """The one :class:`TrainConfig` subclass the recipe script defines."""
    path = recipe_path(recipe)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.import_module(path.stem)
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise UserError(
            f"recipe {path} is named like the module {path.stem!r} that Python imports from "
            f"{getattr(module, '__file__', 'elsewhere')}",
            "rename the recipe script",
        )
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, TrainConfig)
        and obj is not TrainConfig
        and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise UserError(
            f"recipe {path} defines {len(classes)} config classes (subclasses of TrainConfig)",
            "define exactly one, as recipes/tinyvgg.py does",
        )
    return classes[0]
