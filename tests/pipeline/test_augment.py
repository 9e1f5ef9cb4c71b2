"""On-device augmentation: presets, seeding, validation, and where its random numbers come from."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.pipeline.augment import PRESET_OPS, DeviceAugmentation, audit_random_ops, build_augmentation
from ignite_cv.utils.errors import UserError

PRESETS = ["flip", "standard", "strong"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def config(**changes) -> TrainConfig:
    return TrainConfig(**changes)


def images(n=6, channels=3, height=20, width=16, seed=0, device="cpu") -> torch.Tensor:
    return torch.rand(n, channels, height, width, generator=torch.Generator().manual_seed(seed)).to(device)


def test_none_builds_nothing():
    assert build_augmentation(config(augment="none"), 3, (32, 32)) is None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_keeps_shape_range_and_dtype(preset, channels, device):
    aug = build_augmentation(config(augment=preset), channels, (20, 16))
    x = images(channels=channels, device=device)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_output_different_seed_different_output(preset):
    x = images()
    a = build_augmentation(config(augment=preset, seed=7), 3, (20, 16))
    b = build_augmentation(config(augment=preset, seed=7), 3, (20, 16))
    c = build_augmentation(config(augment=preset, seed=8), 3, (20, 16))
    first_a, first_b, first_c = a(x), b(x), c(x)
    assert torch.equal(first_a, first_b) and not torch.equal(first_a, first_c)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), first_a)  # the stream moves on per batch
    a.reseed(7)
    assert torch.equal(a(x), first_a)  # reseed restarts it
    c.reseed(7)
    assert torch.equal(c(x), first_a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("preset", PRESETS)
def test_no_global_rng_is_consumed_and_all_draws_are_on_the_input_device(preset, device):
    aug = build_augmentation(config(augment=preset), 3, (20, 16))
    x = images(device=device)
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state() if device == "cuda" else None
    _, calls = audit_random_ops(aug, x)
    assert torch.equal(torch.get_rng_state(), cpu_state), "the global CPU generator was used"
    if cuda_state is not None:
        assert torch.equal(torch.cuda.get_rng_state(), cuda_state), "the default CUDA generator was used"
    assert calls, "the audit saw no random ops"
    assert all(call.explicit_generator for call in calls), calls
    assert {call.device.split(":")[0] for call in calls} == {device}, calls


def test_the_audit_catches_kornia_sampling_on_the_global_cpu_generator():
    """The pitfall the module avoids: Kornia's modules draw on the CPU from the global generator."""
    kornia_aug = pytest.importorskip("kornia.augmentation")
    module = kornia_aug.AugmentationSequential(
        kornia_aug.RandomHorizontalFlip(), kornia_aug.ColorJiggle(0.4, 0.4)
    )
    state = torch.get_rng_state()
    _, calls = audit_random_ops(module, images())
    assert not torch.equal(torch.get_rng_state(), state)
    assert any(not call.explicit_generator and call.device == "cpu" for call in calls)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("preset", PRESETS)
def test_probability_zero_is_the_identity_and_flip_one_is_an_exact_mirror(preset, device):
    x = images(device=device)
    off = config(
        augment=preset, aug_flip_p=0.0, aug_crop_p=0.0, aug_jiggle_p=0.0, aug_affine_p=0.0, aug_erase_p=0.0
    )
    torch.testing.assert_close(build_augmentation(off, 3, (20, 16))(x), x, atol=1e-5, rtol=0)
    mirror = dataclasses.replace(off, aug_flip_p=1.0)
    torch.testing.assert_close(build_augmentation(mirror, 3, (20, 16))(x), x.flip(-1), atol=1e-5, rtol=0)


def test_crop_resamples_the_drawn_box():
    # A horizontal ramp: a crop of a quarter of the area (half the width) at ratio 1 halves its slope.
    width = 32
    ramp = torch.arange(width, dtype=torch.float32).div(width - 1).expand(4, 1, width, width).contiguous()
    cfg = config(
        augment="standard",
        aug_flip_p=0.0,
        aug_jiggle_p=0.0,
        aug_crop_scale_min=0.25,
        aug_crop_scale_max=0.25,
        aug_crop_ratio_min=1.0,
        aug_crop_ratio_max=1.0,
    )
    out = build_augmentation(cfg, 1, (width, width))(ramp)
    slope = (out[:, 0, :, 1:] - out[:, 0, :, :-1]).mean(dim=(1, 2))
    torch.testing.assert_close(slope, torch.full((4,), 0.5 / (width - 1)), atol=1e-4, rtol=0)
    rows_equal = (out[:, 0] - out[:, 0, :1]).abs().max()
    assert rows_equal < 1e-5  # the ramp is constant down the columns, and so is its crop


def test_the_affine_path_reproduces_crop_and_flip_of_the_crop_resize_path():
    # Both draw crop and flip first from the same stream; with the affine off they must agree.
    x = images(n=8)
    common = dict(seed=3, aug_jiggle_p=0.0, aug_erase_p=0.0)
    crop_resize = build_augmentation(config(augment="standard", **common), 3, (20, 16))
    warped = build_augmentation(config(augment="strong", aug_affine_p=0.0, **common), 3, (20, 16))
    torch.testing.assert_close(warped(x), crop_resize(x), atol=1e-5, rtol=0)


def affine_only(**changes) -> TrainConfig:
    base = dict(
        augment="strong",
        aug_flip_p=0.0,
        aug_crop_p=0.0,
        aug_jiggle_p=0.0,
        aug_erase_p=0.0,
        aug_affine_p=1.0,
        aug_affine_degrees=0.0,
        aug_affine_translate=0.0,
        aug_affine_scale=0.0,
        aug_affine_shear=0.0,
    )
    return config(**{**base, **changes})


def disc(n: int, size: int = 21, radius: float = 6.0, centre: float | None = None) -> torch.Tensor:
    c = (size - 1) / 2 if centre is None else centre
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    image = (((yy - c) ** 2 + (xx - c) ** 2).float().sqrt() <= radius).float()
    return image.expand(n, 3, size, size).contiguous()


def test_affine_rotation_turns_about_the_centre():
    rotate = build_augmentation(affine_only(aug_affine_degrees=180.0), 3, (21, 21))
    centred, off_centre = disc(8), disc(8, radius=3.0, centre=4.0)
    # a centred disc is unchanged by any rotation (up to resampling at its rim), an off-centre one moves
    still = (rotate(centred) - centred).abs().mean(dim=(1, 2, 3))
    moved = (rotate(off_centre) - off_centre).abs().mean(dim=(1, 2, 3))
    assert still.max() < 0.05 and moved.median() > 0.05


def test_affine_translation_and_zoom_move_and_resize_the_content():
    x = disc(16, radius=4.0)
    shifted = build_augmentation(affine_only(aug_affine_translate=0.2, seed=1), 3, (21, 21))(x)
    yy, xx = torch.meshgrid(torch.arange(21.0), torch.arange(21.0), indexing="ij")
    mass = shifted[:, 0].sum(dim=(1, 2))
    cx = (shifted[:, 0] * xx).sum(dim=(1, 2)) / mass - 10
    cy = (shifted[:, 0] * yy).sum(dim=(1, 2)) / mass - 10
    assert cx.abs().max() <= 0.2 * 21 + 0.1 and cy.abs().max() <= 0.2 * 21 + 0.1
    assert (cx.abs() + cy.abs()).min() > 0 and cx.std() > 0.5  # it moved, by different amounts
    zoomed = build_augmentation(affine_only(aug_affine_scale=0.5, seed=1), 3, (21, 21))(x)
    area = zoomed[:, 0].sum(dim=(1, 2)) / x[:, 0].sum(dim=(1, 2))
    assert area.min() < 0.85 and area.max() > 1.15 and area.min() > 0.2 and area.max() < 2.3


def test_colour_jiggle_grey_and_rgb():
    # brightness only: factors in [1 - m, 1 + m] scale every pixel of an image by the same factor.
    cfg = config(
        augment="standard", aug_flip_p=0.0, aug_crop_p=0.0, aug_jiggle_p=1.0, aug_jiggle=0.3, aug_hue=0.0
    )
    x = images(n=16, channels=1) * 0.5 + 0.25
    out = build_augmentation(cfg, 1, (20, 16))(x)
    # grey: brightness·contrast about the mean keeps the image's pixel order and its mean scaled by b
    flat_in, flat_out = x.reshape(16, -1), out.reshape(16, -1)
    assert (torch.argsort(flat_in, dim=1) == torch.argsort(flat_out, dim=1)).float().mean() > 0.99
    rgb = images(n=16, channels=3)
    grey = rgb.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    out = build_augmentation(cfg, 3, (20, 16))(grey)
    # saturation and hue leave a grey image grey
    assert (out - out.mean(dim=1, keepdim=True)).abs().max() < 1e-5


def test_hue_rotation_keeps_luma():
    cfg = config(
        augment="standard", aug_flip_p=0.0, aug_crop_p=0.0, aug_jiggle_p=1.0, aug_jiggle=0.0, aug_hue=0.1
    )
    aug = build_augmentation(cfg, 3, (20, 16))
    x = images(n=8) * 0.2 + 0.4  # away from the clamp
    out = aug(x)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((out * luma).sum(1), (x * luma).sum(1), atol=1e-4, rtol=0)
    assert not torch.allclose(out, x, atol=1e-3)


def test_random_erasing_writes_one_box_of_noise():
    cfg = config(
        augment="strong",
        aug_flip_p=0.0,
        aug_crop_p=0.0,
        aug_jiggle_p=0.0,
        aug_affine_p=0.0,
        aug_erase_p=1.0,
        aug_erase_scale_min=0.1,
        aug_erase_scale_max=0.1,
    )
    x = torch.zeros(5, 3, 20, 20)  # black: the noise box is recognisable
    out = build_augmentation(cfg, 3, (20, 20))(x)
    changed = (out > 1e-6).all(dim=1)  # (n, H, W); a noise value of exactly 0 has probability ~2⁻²⁴
    for mask in changed:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert mask.sum() == box, "the erased region is one rectangle"
        assert 0.05 * 400 <= box <= 0.2 * 400
    assert out.max() <= 1 and out.std() > 0.05


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"aug_flip_p": 1.5}, "--aug-flip-p"),
        ({"aug_jiggle_p": -0.1}, "--aug-jiggle-p"),
        ({"aug_crop_scale_min": 0.0}, "--aug-crop-scale-min"),
        ({"aug_crop_scale_min": 0.9, "aug_crop_scale_max": 0.5}, "--aug-crop-scale-min"),
        ({"aug_jiggle": 1.5}, "--aug-jiggle"),
        ({"aug_hue": 0.6}, "--aug-hue"),
        ({"aug_affine_scale": 1.0}, "--aug-affine-scale"),
        ({"aug_erase_scale_max": 1.0}, "--aug-erase-scale-max"),
    ],
)
def test_bad_magnitudes_are_one_line_user_errors(changes, flag):
    with pytest.raises(UserError) as err:
        build_augmentation(config(augment="strong", **changes), 3, (32, 32))
    assert flag in str(err.value) and "\n" not in str(err.value)


def test_options_come_from_the_command_line():
    cfg = parse_config(
        TrainConfig,
        ["--augment", "strong", "--aug-flip-p", "0.2", "--aug-affine-degrees", "30", "--seed", "5"],
    )
    aug = build_augmentation(cfg, 3, (32, 32))
    assert isinstance(aug, DeviceAugmentation)
    assert aug.settings.flip_p == 0.2 and aug.settings.degrees == 30.0 and aug.seed == 5
    assert aug.settings.ops == PRESET_OPS["strong"]


def test_rng_state_round_trip_resumes_the_stream():
    aug = build_augmentation(config(augment="strong"), 3, (20, 16))
    x = images()
    aug(x)
    state = aug.get_rng_state()
    expected = aug(x)
    fresh = build_augmentation(config(augment="strong"), 3, (20, 16))
    fresh.set_rng_state(state)
    assert torch.equal(fresh(x), expected)


@pytest.mark.parametrize("preset", PRESETS)
def test_bfloat16_input(preset):
    aug = build_augmentation(config(augment=preset), 3, (20, 16))
    out = aug(images().to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and math.isfinite(out.float().sum().item())
