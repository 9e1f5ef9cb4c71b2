"""preserved_state: modes per module and requires_grad per parameter come back, also after an error."""

from __future__ import annotations

import pytest
from torch import nn

from ignite_cv.explain.state import preserved_state


def _model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.ReLU(), nn.Dropout()))
    model.train()
    model[1].eval()
    model[0].weight.requires_grad_(False)
    return model


def _snapshot(model: nn.Module):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def test_modes_and_flags_are_restored_one_by_one():
    model = _model()
    before = _snapshot(model)
    with preserved_state(model):
        model.eval()
        model.requires_grad_(True)
        assert _snapshot(model) == ([False] * 6, [True] * 4)
    assert _snapshot(model) == before == ([True, True, False, True, True, True], [False, True, True, True])


def test_they_are_restored_when_the_block_raises():
    model = _model()
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"), preserved_state(model):
        model.train()
        model.requires_grad_(False)
        raise RuntimeError("boom")
    assert _snapshot(model) == before
