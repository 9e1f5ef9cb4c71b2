"""Global contrast normalization and ZCA whitening."""

from __future__ import annotations

import json

import pytest
import torch

from ignite_cv.pipeline.gcn import GlobalContrastNormalize, check_gcn_params, global_contrast_normalize
from ignite_cv.pipeline.normalize import (
    build_normalizer,
    join_spec_tensors,
    resolve_normalization,
    split_spec_tensors,
)
from ignite_cv.pipeline.options import PipelineOptions
from ignite_cv.utils.errors import UserError


def gcn_options(**changes) -> PipelineOptions:
    return PipelineOptions(normalize="gcn", **changes)


@pytest.mark.parametrize("scale", [1.0, 55.0, 0.5])
@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (4, 3, 32, 32), (3, 3, 7, 5)])
def test_gcn_with_lambda_zero_gives_mean_zero_and_std_scale(scale, shape):
    torch.manual_seed(0)
    images = torch.randint(0, 256, shape, dtype=torch.uint8).float() / 255
    images[0] *= 0.1  # a low-contrast image must come out with the same spread
    spec = resolve_normalization(gcn_options(gcn_scale=scale), shape[1], None, None, None)
    out = build_normalizer(spec)(images).double()
    per_image = out.reshape(shape[0], -1)
    assert per_image.mean(dim=1).abs().max() < 1e-4 * scale
    assert (per_image.std(dim=1, unbiased=False) - scale).abs().max() < 1e-4 * scale


def test_gcn_matches_formula_with_lambda():
    torch.manual_seed(1)
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    s, lam, eps = 2.0, 10.0, 1e-8
    flat = x.reshape(5, -1)
    centred = flat - flat.mean(dim=1, keepdim=True)
    expected = s * centred / torch.clamp((lam + centred.pow(2).mean(dim=1, keepdim=True)).sqrt(), min=eps)
    got = global_contrast_normalize(x, s, lam, eps).reshape(5, -1)
    torch.testing.assert_close(got, expected)
    assert got.std(dim=1, unbiased=False).max() < 1.0  # λ > 0 shrinks low-contrast images


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_constant_image_gives_finite_output(value):
    module = GlobalContrastNormalize(scale=1.0, lam=0.0, eps=1e-8)
    out = module(torch.full((2, 3, 4, 4), value))
    assert torch.isfinite(out).all()
    assert out.abs().max() == 0


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"gcn_scale": 0.0}, "--gcn-scale"),
        ({"gcn_scale": -1.0}, "--gcn-scale"),
        ({"gcn_eps": 0.0}, "--gcn-eps"),
        ({"gcn_eps": -1e-8}, "--gcn-eps"),
        ({"gcn_lambda": -0.1}, "--gcn-lambda"),
        ({"gcn_scale": float("nan")}, "--gcn-scale"),
    ],
)
def test_gcn_parameters_out_of_range_are_one_line_user_errors(changes, flag):
    with pytest.raises(UserError) as err:
        resolve_normalization(gcn_options(**changes), 3, None, None, None)
    message = str(err.value)
    assert flag in message and "\n" not in message and "pass" in message


def test_gcn_parameters_are_checked_when_rebuilt_from_a_spec():
    with pytest.raises(UserError, match="--gcn-eps"):
        build_normalizer({"kind": "gcn", "scale": 1.0, "lambda": 0.0, "eps": 0.0, "zca": None})
    check_gcn_params(1.0, 0.0, 1e-8)  # the defaults are valid


def _batches(images: torch.Tensor, size: int = 97):
    return lambda: (images[i : i + size] for i in range(0, len(images), size))


def test_zca_whitens_the_training_split(tmp_path):
    torch.manual_seed(2)
    # correlated pixels: a smooth random field plus noise, 1×4×4 images
    base = torch.rand(600, 1, 2, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    images = ((0.7 * base + 0.3 * torch.rand(600, 1, 4, 4)) * 255).round().to(torch.uint8)
    options = gcn_options(zca=True, zca_eps=1e-9)
    spec = resolve_normalization(options, 1, _batches(images), "fp-zca", tmp_path)
    assert len(spec["zca"]["mean"]) == 16 and len(spec["zca"]["transform"]) == 16
    json.dumps(spec)  # JSON-able
    out = build_normalizer(spec)(images.float() / 255).reshape(600, -1).double()
    covariance = torch.cov(out.T)
    # GCN leaves each image with mean 0, so the data span 15 dimensions: identity minus that direction.
    ones = torch.full((16, 1), 0.25, dtype=torch.float64)
    torch.testing.assert_close(
        covariance, torch.eye(16, dtype=torch.float64) - ones @ ones.T, atol=2e-3, rtol=0
    )


def test_zca_cache_hit_and_spec_tensors_round_trip(tmp_path):
    torch.manual_seed(3)
    images = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8)
    options = gcn_options(zca=True)
    first = resolve_normalization(options, 3, _batches(images), "fp", tmp_path)

    def must_not_run():
        raise AssertionError("the cache should have answered")

    second = resolve_normalization(options, 3, must_not_run, "fp", tmp_path)
    assert second == first
    small, tensors = split_spec_tensors(first)
    assert small["zca"] == {"eps": 0.1, "dim": 48} and set(tensors) == {
        "normalize.zca_mean",
        "normalize.zca_transform",
    }
    rebuilt = build_normalizer(join_spec_tensors(json.loads(json.dumps(small)), tensors))
    x = images.float() / 255
    torch.testing.assert_close(rebuilt(x), build_normalizer(first)(x))


def test_zca_user_errors():
    images = torch.randint(0, 256, (8, 3, 32, 33), dtype=torch.uint8)
    with pytest.raises(UserError, match="--zca"):
        resolve_normalization(gcn_options(zca=True), 3, _batches(images), None, None)
    with pytest.raises(UserError, match="no training split"):
        resolve_normalization(gcn_options(zca=True), 3, None, None, None)
    with pytest.raises(UserError, match="--normalize gcn"):
        resolve_normalization(PipelineOptions(normalize="meanstd", zca=True), 3, _batches(images), None, None)
    with pytest.raises(UserError, match="--zca-eps"):
        resolve_normalization(
            gcn_options(zca=True, zca_eps=0.0), 3, _batches(images[:, :, :4, :4]), None, None
        )
