"""The model registry: names → builders; unknown names are one-line errors; extra fields are ignored."""

from __future__ import annotations

import pytest
from torch import nn

from ignite_cv.models import available_models, build_model, model_arg_names, register_model
from ignite_cv.models.options import ARCHITECTURES
from ignite_cv.utils.errors import UserError


def test_the_built_in_architectures_are_registered_and_listed_in_the_options():
    assert available_models() == sorted(ARCHITECTURES)


def test_arguments_are_the_builders_own_beyond_channels_size_and_outputs():
    assert model_arg_names("tinyvgg") == ["hidden_units", "batch_norm", "dropout"]
    assert model_arg_names("resnet18") == ["dropout", "head_hidden"]


def test_arguments_a_builder_does_not_take_are_ignored():
    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4, weights="none", hidden_sizes=[9])
    assert model.block1[0].out_channels == 4


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(UserError, match=r"unknown model 'vgg16'; choose one of: alexnet, alexnet_small"):
        build_model("vgg16", 3, (32, 32), 2)


def test_a_name_cannot_be_registered_twice():
    @register_model("test_only_linear")
    def linear(in_channels, image_size, num_outputs):
        return nn.Linear(in_channels * image_size[0] * image_size[1], num_outputs)

    assert isinstance(build_model("test_only_linear", 1, (2, 2), 3), nn.Linear)
    with pytest.raises(ValueError, match="registered twice"):
        register_model("test_only_linear")(linear)
