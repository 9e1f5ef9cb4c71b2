"""Architectures, registered by name. ``build_model`` rebuilds any of them from checkpoint metadata."""

from ignite_cv.models.registry import available_models, build_model, model_arg_names, register_model

__all__ = ["available_models", "build_model", "model_arg_names", "register_model"]
