"""Architectures, registered by name. ``build_model`` rebuilds any of them from checkpoint metadata.

Importing this package registers the built-in architectures (each module's ``@register_model``); the
registry itself imports none of them, so the two never import each other.
"""

from ignite_cv.models import alexnet, mlp, resnet, tinyvgg  # noqa: F401  (registers them)
from ignite_cv.models.registry import available_models, build_model, model_arg_names, register_model

__all__ = ["available_models", "build_model", "model_arg_names", "register_model"]
