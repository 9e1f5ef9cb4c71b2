"""BatchPipeline with the real augmentation and normalizers: training-only augmentation, determinism."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.config import TrainConfig
from ignite_cv.pipeline.augment import build_augmentation
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer, resolve_normalization


def uint8_images(n=12, channels=3, size=16, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def make_pipeline(cfg: TrainConfig, train: torch.Tensor) -> BatchPipeline:
    channels, size = train.shape[1], tuple(train.shape[-2:])
    spec = resolve_normalization(cfg, channels, lambda: [train], None, None)
    return BatchPipeline(build_normalizer(spec), build_augmentation(cfg, channels, size))


@pytest.mark.parametrize("normalize", ["meanstd", "imagenet", "gcn", "none"])
@pytest.mark.parametrize("channels", [1, 3])
def test_evaluation_is_deterministic_and_equals_plain_normalization(normalize, channels):
    train = uint8_images(channels=channels)
    cfg = TrainConfig(augment="strong", normalize=normalize)
    pipeline = make_pipeline(cfg, train)
    batch = uint8_images(n=5, channels=channels, seed=1)
    first, second = pipeline(batch), pipeline(batch, augment=False)
    assert torch.equal(first, second)
    expected = pipeline.normalizer(batch.float() / 255)
    assert torch.equal(first, expected)
    state = torch.get_rng_state()
    pipeline(batch, augment=True)
    assert torch.equal(torch.get_rng_state(), state)  # not even the training step touches the global RNG


def test_augmentation_runs_only_when_asked_and_follows_the_seed():
    train = uint8_images()
    batch = uint8_images(n=8, seed=2)
    a = make_pipeline(TrainConfig(augment="standard", seed=11), train)
    b = make_pipeline(TrainConfig(augment="standard", seed=11), train)
    c = make_pipeline(TrainConfig(augment="standard", seed=12), train)
    augmented = a(batch, augment=True)
    assert not torch.equal(augmented, a(batch, augment=False))
    assert torch.equal(augmented, b(batch, augment=True))
    assert not torch.equal(augmented, c(batch, augment=True))


def test_grey_meanstd_pipeline_outputs_standardised_values():
    train = uint8_images(n=200, channels=1)
    pipeline = make_pipeline(TrainConfig(augment="none", normalize="meanstd"), train)
    out = pipeline(train).double()
    assert abs(out.mean().item()) < 1e-5 and abs(out.std(unbiased=False).item() - 1) < 1e-5
