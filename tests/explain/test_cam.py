"""compute_cams: faithful maps on a data set whose evidence is known, and a model left exactly as it was."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from ignite_cv.explain.cam import METHODS, ClassScores, compute_cams
from ignite_cv.explain.layers import resolve_target_layer
from ignite_cv.models import build_model
from ignite_cv.models.freezing import freeze_backbone, set_train_mode
from ignite_cv.utils.errors import UserError
from tests.explain.patterns import SIZE, SmallResNet, pattern_images, peak_in_quadrant, predictions, train

#: The acceptance bar: the map's peak in the pattern's quadrant for at least this share of test images.
BAR = 0.9
TEST_IMAGES = 24


def _tinyvgg() -> nn.Module:
    torch.manual_seed(1)
    return build_model("tinyvgg", 1, (SIZE, SIZE), 1, hidden_units=16)  # two classes: one logit, grey


def _resnet() -> nn.Module:
    torch.manual_seed(1)
    return SmallResNet(3, 3)  # three classes: three logits, RGB


# TinyVGG on "no pattern / +" (one logit, grey); the ResNet on "none / + / ×" (three logits, RGB).
SETUPS = {"tinyvgg": (_tinyvgg, 2, 1), "resnet": (_resnet, 3, 3)}


@pytest.fixture(scope="module")
def trained() -> dict:
    models = {}
    for name, (make, classes, channels) in SETUPS.items():
        x, y, _ = pattern_images(512, classes, channels, seed=0)
        models[name] = train(make(), x, y, epochs=5, lr=3e-3)
    return models


def _test_set(name: str):
    _, classes, channels = SETUPS[name]
    return pattern_images(TEST_IMAGES, classes, channels, seed=1, with_pattern_only=True)


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_the_maps_of_a_trained_model_peak_at_the_pattern(trained, name):
    """For each method the peak lies in the pattern's quadrant (not at the equally bright decoy) for >= 90 %
    of the test images, with the auto layer (TinyVGG block2 8×8, the ResNet's layer4 4×4)."""
    model = trained[name]
    x, y, quadrants = _test_set(name)
    assert (predictions(model, x) == y).float().mean() >= 0.95  # the premise: it learned the task
    layer = resolve_target_layer(model, "auto", tuple(x.shape[1:]))
    assert layer.name == {"tinyvgg": "block2", "resnet": "layer4"}[name]
    for method in METHODS:
        maps = compute_cams(model, x, layer.name, method).maps
        assert maps.shape == (TEST_IMAGES, SIZE, SIZE)
        assert peak_in_quadrant(maps, quadrants) >= BAR, method


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_a_model_with_random_weights_fails_the_bar(name):
    """The same measurement fails for untrained weights, so the test above can fail."""
    make, _, _ = SETUPS[name]
    model = make().eval()
    x, _, quadrants = _test_set(name)
    layer = resolve_target_layer(model, "auto", tuple(x.shape[1:]))
    for method in METHODS:
        maps = compute_cams(model, x, layer.name, method).maps
        assert peak_in_quadrant(maps, quadrants) < BAR, method


def _state(model: nn.Module):
    return (
        [(name, m.training) for name, m in model.named_modules()],
        [(name, p.requires_grad) for name, p in model.named_parameters()],
        [(name, None if p.grad is None else p.grad.clone()) for name, p in model.named_parameters()],
    )


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def _same_state(before, after) -> bool:
    modes, flags, grads = before
    modes2, flags2, grads2 = after
    same_grads = all(
        n1 == n2 and (g1 is None and g2 is None or g1 is not None and g2 is not None and torch.equal(g1, g2))
        for (n1, g1), (n2, g2) in zip(grads, grads2)
    )
    return modes == modes2 and flags == flags2 and same_grads


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_a_frozen_backbone_in_training_mode_is_explained_and_left_as_it_was(method):
    """Extract mode mid-run: backbone frozen, its BatchNorm in eval mode, the head training, gradients
    held. Gradients still reach layer3, and modes, flags, .grad and hooks are as before."""
    torch.manual_seed(0)
    model = build_model("resnet18", 3, (64, 64), 4)
    freeze_backbone(model)
    set_train_mode(model)
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()  # the head holds a gradient, as in the middle of a step
    before = _state(model)
    assert model.training and not model.bn1.training and model.head.training
    result = compute_cams(model, x, "layer3", method, classes=[1, 3])
    assert _same_state(before, _state(model))
    assert _hooks(model) == 0
    assert result.maps.shape == (2, 64, 64) and result.explained.tolist() == [1, 3]
    assert result.maps.flatten(1).amax(1).min() > 0.9  # real maps, not zeros from a lost gradient


@pytest.mark.parametrize("method", METHODS)
def test_modes_flags_gradients_and_hooks_are_restored(method):
    """Some modules training and some not, some parameters frozen, gradients held: all as before."""
    torch.manual_seed(0)
    model = SmallResNet(3, 3)
    model.layer1.requires_grad_(False)
    model.train()
    model.layer1.eval()
    model.layer3[0].bn2.eval()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    before = _state(model)
    result = compute_cams(model, torch.randn(2, 3, 32, 32), "layer4", method)
    assert _same_state(before, _state(model))
    assert _hooks(model) == 0
    assert result.maps.shape == (2, 32, 32)


def test_a_map_depends_on_the_class_explained():
    torch.manual_seed(0)
    model = SmallResNet(3, 3).eval()
    x = torch.randn(1, 3, 32, 32)
    maps = [compute_cams(model, x, "layer3", "gradcam", classes=[c]).maps for c in range(3)]
    assert not torch.allclose(maps[0], maps[1]) and not torch.allclose(maps[1], maps[2])


def test_one_logit_explains_both_classes_by_their_log_odds():
    """Class scores [0, z] would give class 0 a zero gradient; the targets are [-z, z]: class 0's map is
    Grad-CAM of -z, probabilities stay [1 - σ(z), σ(z)]."""
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (16, 16), 1, hidden_units=4).eval()
    x = torch.randn(3, 1, 16, 16)
    result = compute_cams(model, x, "block2", "gradcam", classes=[0, 0, 0])
    with torch.no_grad():
        z = model(x)[:, 0]
    assert torch.allclose(result.probabilities[:, 1], torch.sigmoid(z), atol=1e-6)
    assert result.predicted.tolist() == (z > 0).long().tolist()
    negated = nn.Sequential(model, _Negate()).eval()  # a model whose one logit is -z
    flipped = compute_cams(negated, x, "0.block2", "gradcam", classes=[1, 1, 1])
    assert torch.allclose(result.maps, flipped.maps, atol=1e-5)
    assert float(result.maps.amax()) > 0


class _Negate(nn.Module):
    def forward(self, x):
        return -x


def test_class_scores_of_many_logits_are_the_logits():
    model = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    scorer = ClassScores(model)
    assert torch.equal(scorer(x), model(x))
    assert torch.allclose(scorer.probabilities(scorer(x)), model(x).softmax(1))


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_gives_the_same_maps(method):
    torch.manual_seed(0)
    model = build_model("tinyvgg", 3, (16, 16), 5, hidden_units=4).eval()
    x = torch.randn(2, 3, 16, 16)
    plain = compute_cams(model, x, "block2", method).maps
    model = model.to(memory_format=torch.channels_last)
    last = compute_cams(model, x.contiguous(memory_format=torch.channels_last), "block2", method).maps
    assert torch.allclose(plain, last, atol=1e-4)


def test_maps_inside_inference_mode_and_no_grad_blocks():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4).eval()
    x = torch.randn(2, 1, 16, 16)
    expected = compute_cams(model, x, "block2", "gradcam").maps
    with torch.inference_mode():
        inside = compute_cams(model, torch.randn(2, 1, 16, 16).copy_(x), "block2", "gradcam").maps
    with torch.no_grad():
        again = compute_cams(model, x, "block2", "gradcam").maps
    assert torch.allclose(inside, expected) and torch.allclose(again, expected)


def test_many_calls_leave_no_hooks_and_no_tensors_behind():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4).eval()
    x = torch.randn(4, 1, 16, 16)
    for method in METHODS:
        compute_cams(model, x, "block2", method)

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))

    before = live_tensors()
    for i in range(30):
        result = compute_cams(model, x, "block2", METHODS[i % 3])
        del result
    assert _hooks(model) == 0
    assert live_tensors() == before


def test_grad_cam_plus_plus_weights_are_the_papers():
    """α = g² / (2g² + Σ_ab A_ab · g³) per position (Chattopadhyay et al. 2018, eq. 19), weight =
    Σ_ij α relu(g): computed here by hand on the hooked activation and gradient."""
    from ignite_cv.explain.cam import _extractors

    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4).eval()
    extractor = _extractors()["gradcam++"](ClassScores(model), target_layer=model.block2)
    with extractor:
        scores = extractor.model(torch.randn(2, 1, 16, 16))
        weights = extractor._get_weights([0, 2], scores)[0]
        grad, act = extractor.hook_g[0], extractor.hook_a[0]
    g2, g3 = grad**2, grad**3
    alpha = torch.where(g2 > 0, g2 / (2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g3 + 1e-8), 0.0)
    assert torch.allclose(weights, (alpha * grad.clamp_min(0)).sum(dim=(2, 3)), rtol=1e-5, atol=1e-12)


def test_bad_arguments():
    model = build_model("tinyvgg", 1, (16, 16), 3, hidden_units=4)
    x = torch.randn(1, 1, 16, 16)
    with pytest.raises(UserError, match="unknown CAM method 'lime'"):
        compute_cams(model, x, "block2", "lime")
    with pytest.raises(UserError, match="has no layer 'block9'"):
        compute_cams(model, x, "block9", "gradcam")
    with pytest.raises(ValueError, match="classes must lie in 0..2"):
        compute_cams(model, x, "block2", "gradcam", classes=[3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_maps_match_the_cpu(method):
    torch.manual_seed(0)
    model = SmallResNet(3, 3).eval()
    x = torch.randn(3, 3, 32, 32)
    cpu = compute_cams(model, x, "layer4", method).maps
    gpu = compute_cams(model.cuda(), x.cuda(), "layer4", method)
    assert gpu.maps.device.type == "cuda"
    assert torch.allclose(gpu.maps.cpu(), cpu, atol=1e-3)
