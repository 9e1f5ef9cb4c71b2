"""meanstd / imagenet / none normalization, the statistics cache, and the normalizer modules."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from ignite_cv.pipeline.normalize import IMAGENET_MEAN, IMAGENET_STD, build_normalizer, resolve_normalization
from ignite_cv.pipeline.options import PipelineOptions
from ignite_cv.utils.errors import UserError


class CountingBatches:
    """A ``train_batches`` callable that counts how often it is called."""

    def __init__(self, images: torch.Tensor, size: int) -> None:
        self.images, self.size, self.calls = images, size, 0

    def __call__(self):
        self.calls += 1
        return (self.images[i : i + self.size] for i in range(0, len(self.images), self.size))


def numpy_reference(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = images.numpy().astype(np.float64) / 255.0
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


@pytest.mark.parametrize(("shape", "batch"), [((1000, 3, 16, 16), 128), ((777, 1, 28, 28), 100)])
def test_meanstd_equals_numpy_float64_reference(shape, batch):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    images[:, 0] //= 3  # channels with different statistics
    spec = resolve_normalization(PipelineOptions(), shape[1], CountingBatches(images, batch), None, None)
    mean, std = numpy_reference(images)
    assert spec["kind"] == "meanstd" and spec["images"] == shape[0]
    np.testing.assert_allclose(spec["mean"], mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spec["std"], std, rtol=0, atol=1e-12)


def test_meanstd_is_exact_on_a_large_skewed_split():
    # 60000 images of mostly-dark pixels: float32 accumulation would drift well past 1e-5 here.
    generator = torch.Generator().manual_seed(1)
    images = (torch.rand(60000, 1, 28, 28, generator=generator) ** 4 * 255).to(torch.uint8)
    spec = resolve_normalization(PipelineOptions(), 1, CountingBatches(images, 4096), None, None)
    mean, std = numpy_reference(images)
    assert abs(spec["mean"][0] - mean[0]) < 1e-5 and abs(spec["std"][0] - std[0]) < 1e-5


def test_meanstd_cache_hit_by_fingerprint_and_miss_on_another_split(tmp_path):
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    batches = CountingBatches(images, 16)
    first = resolve_normalization(PipelineOptions(), 3, batches, "split-a", tmp_path)
    assert batches.calls == 1
    second = resolve_normalization(PipelineOptions(), 3, batches, "split-a", tmp_path)
    assert batches.calls == 1, "a cache hit must not read the training split"
    assert second == first
    other = CountingBatches(images[:10], 16)
    third = resolve_normalization(PipelineOptions(), 3, other, "split-b", tmp_path)
    assert other.calls == 1 and third["mean"] != first["mean"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"
    assert len(list(tmp_path.glob("meanstd-*.json"))) == 2


def test_damaged_cache_is_recomputed(tmp_path):
    images = torch.randint(0, 256, (20, 1, 4, 4), dtype=torch.uint8)
    batches = CountingBatches(images, 8)
    spec = resolve_normalization(PipelineOptions(), 1, batches, "fp", tmp_path)
    (cache,) = tmp_path.glob("meanstd-*.json")
    cache.write_text("{not json")
    with pytest.warns(UserWarning, match="cache"):
        again = resolve_normalization(PipelineOptions(), 1, batches, "fp", tmp_path)
    assert batches.calls == 2 and again == spec
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_normalization(PipelineOptions(), 1, batches, "fp", tmp_path)  # rewritten: a clean hit
    assert batches.calls == 2


def test_meanstd_without_training_split_is_a_one_line_user_error():
    with pytest.raises(UserError) as err:
        resolve_normalization(PipelineOptions(normalize="meanstd"), 3, None, None, None)
    message = str(err.value)
    assert "no training split" in message and "--normalize imagenet" in message and "\n" not in message


def test_constant_training_channel_is_a_user_error():
    images = torch.full((10, 1, 4, 4), 7, dtype=torch.uint8)
    with pytest.raises(UserError, match="constant"):
        resolve_normalization(PipelineOptions(), 1, CountingBatches(images, 4), None, None)


def test_meanstd_normalizer_standardises_the_training_split():
    images = torch.randint(0, 256, (300, 3, 6, 6), dtype=torch.uint8)
    spec = resolve_normalization(PipelineOptions(), 3, CountingBatches(images, 64), None, None)
    module = build_normalizer(json.loads(json.dumps(spec)))  # survives a trip through checkpoint metadata
    out = module(images.float() / 255).double()
    torch.testing.assert_close(
        out.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match="expected"):
        module(torch.rand(2, 1, 6, 6))  # grey images must not broadcast against RGB statistics


def test_imagenet_and_none():
    def no_batches():
        raise AssertionError("imagenet and none must not read data")

    rgb = resolve_normalization(PipelineOptions(normalize="imagenet"), 3, no_batches, None, None)
    assert rgb == {"kind": "imagenet", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    grey = resolve_normalization(PipelineOptions(normalize="imagenet"), 1, None, None, None)
    assert len(grey["mean"]) == 1 and abs(grey["mean"][0] - 0.449) < 1e-3
    x = torch.rand(2, 3, 5, 5)
    expected = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(build_normalizer(rgb)(x), expected)
    none = resolve_normalization(PipelineOptions(normalize="none"), 3, None, None, None)
    assert none == {"kind": "none"} and isinstance(build_normalizer(none), nn.Identity)


def test_unknown_spec_is_a_user_error():
    with pytest.raises(UserError, match="unknown normalization"):
        build_normalizer({"kind": "whiten-everything"})


def test_normalizer_moves_with_to():
    module = build_normalizer({"kind": "meanstd", "mean": [0.5], "std": [0.25]})
    assert module.state_dict() == {}  # the spec, not the state dict, carries the constants
    out = module.to(torch.float64)(torch.full((1, 1, 2, 2), 0.75, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.allclose(out, torch.ones_like(out))
