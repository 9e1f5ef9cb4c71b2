"""The transfer-learning architectures build at their sizes, on grey and RGB input, for 1 or N logits."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from ignite_cv.models import available_models, build_model, model_arg_names
from ignite_cv.models.heads import hidden_width, make_head
from ignite_cv.utils.errors import UserError

SIZES = {
    "resnet18": (32, 64),
    "resnet34": (32, 64),
    "resnet50": (32, 64),
    "alexnet": (64,),
    "alexnet_small": (28, 32),
}
CASES = [
    (arch, size, channels, outputs)
    for arch, sizes in SIZES.items()
    for size in sizes
    for channels in (1, 3)
    for outputs in (1, 10)
]


def test_registered() -> None:
    assert set(SIZES) <= set(available_models())
    for arch in SIZES:
        assert {"dropout", "head_hidden"} <= set(model_arg_names(arch))


@pytest.mark.parametrize(("arch", "size", "channels", "outputs"), CASES)
def test_forward(arch: str, size: int, channels: int, outputs: int) -> None:
    torch.manual_seed(0)
    model = build_model(arch, channels, (size, size), outputs)
    model.train()  # BatchNorm in training mode needs more than one value per channel: batch of 2
    logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, outputs)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert model.head[-1].weight.grad is not None


def test_hidden_head_in_model() -> None:
    model = build_model("resnet18", 3, (32, 32), 10, head_hidden=True, dropout=0.3)
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 16), (16, 10)]
    assert all(m.p == 0.3 for m in model.head if isinstance(m, nn.Dropout))
    model50 = build_model("resnet50", 3, (32, 32), 1, head_hidden=True)
    assert model50.head[1].out_features == 32


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "alexnet"])
def test_backbone_names_match_torchvision(arch: str) -> None:
    # An ImageNet state dict must load key for key: same names and shapes, head aside.
    ours = build_model(arch, 3, (64, 64), 10).state_dict()
    theirs = getattr(torchvision.models, arch)(weights=None).state_dict()
    head = ("fc.",) if arch.startswith("resnet") else ("classifier.6.",)
    theirs = {k: v.shape for k, v in theirs.items() if not k.startswith(head)}
    ours = {k: v.shape for k, v in ours.items() if not k.startswith("head.")}
    assert ours == theirs


def test_grey_first_conv() -> None:
    assert build_model("resnet18", 1, (32, 32), 2).conv1.weight.shape == (64, 1, 7, 7)
    assert build_model("alexnet", 1, (64, 64), 2).features[0].weight.shape == (64, 1, 11, 11)
    assert build_model("alexnet_small", 1, (28, 28), 2).features[0].weight.shape == (64, 1, 3, 3)


def test_alexnet_too_small() -> None:
    with pytest.raises(UserError, match="alexnet_small or --image-size 224"):
        build_model("alexnet", 3, (32, 32), 10)
    build_model("alexnet", 3, (63, 63), 10)(torch.randn(1, 3, 63, 63))  # the smallest that works


@pytest.mark.parametrize(
    ("width", "hidden"),
    [(512, 16), (2048, 32), (4096, 64), (1024, 32), (9216, 128), (100, 8), (1, 1), (2, 1)],
)
def test_hidden_width_rule(width: int, hidden: int) -> None:
    # Closest power of two to sqrt(width) in linear distance; an exact tie (sqrt 9216 = 96) goes up.
    assert hidden_width(width) == hidden


def test_make_head_layers() -> None:
    plain = make_head(512, 1, 0.5, hidden=False)
    assert [type(m) for m in plain] == [nn.Dropout, nn.Linear]
    assert (plain[1].in_features, plain[1].out_features) == (512, 1)
    hidden = make_head(2048, 7, 0.0, hidden=True)
    assert [type(m) for m in hidden] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (hidden[1].out_features, hidden[4].in_features, hidden[4].out_features) == (32, 32, 7)
    assert hidden(torch.randn(3, 2048)).shape == (3, 7)
