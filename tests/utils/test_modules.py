"""unwrap peels every wrapper (DataParallel, torch.compile's); count_params counts the bare model."""

import torch
from torch import nn

from ignite_cv.utils.modules import count_params, unwrap


def test_unwrap_peels_nested_wrappers():
    model = nn.Linear(2, 3)
    wrapped = nn.DataParallel(torch.compile(model, backend="eager"))
    assert unwrap(wrapped) is model
    assert unwrap(model) is model


def test_count_params_counts_all_and_trainable():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    model[0].weight.requires_grad_(False)
    assert count_params(nn.DataParallel(model)) == (6 + 3 + 3 + 1, 3 + 3 + 1)
