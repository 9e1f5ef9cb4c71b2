"""Pooled features are what the head classifies: head(features) gives the model's logits."""

from __future__ import annotations

import torch
from safetensors import safe_open

from ignite_cv.features.extract import feature_function, pooled_features, save_features
from ignite_cv.models import build_model
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer


def test_resnet_features_are_its_forward_features():
    torch.manual_seed(0)
    model = build_model("resnet18", 3, (32, 32), 1).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        features = feature_function(model)(x)
        assert features.shape == (2, 512)
        assert torch.equal(model.head(features), model(x))


def test_other_models_give_the_input_of_their_last_linear_layer():
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), 10, hidden_units=3).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.inference_mode():
        features = feature_function(model)(x)
        last = model.classifier[-1]
        assert features.shape == (4, 3 * 2 * 2)
        assert torch.equal(last(features), model(x))


def test_pooled_features_follow_the_loader_and_save_as_safetensors(tmp_path):
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), 1, hidden_units=2)
    pipeline = BatchPipeline(build_normalizer({"kind": "meanstd", "mean": [0.5], "std": [0.25]}))
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 1, 0, 1])
    loader = [(images[:3], labels[:3]), (images[3:], labels[3:])]
    features, got, kept = pooled_features(model, pipeline, loader, torch.device("cpu"), keep_images=True)
    assert features.shape == (5, 8) and torch.equal(got, labels) and torch.equal(kept, images)
    with torch.inference_mode():
        whole = feature_function(model)(pipeline(images))
    assert torch.allclose(features, whole, atol=1e-6)
    save_features(tmp_path / "f.safetensors", features, got, {"split": "test"})
    with safe_open(str(tmp_path / "f.safetensors"), "pt") as handle:
        assert handle.metadata() == {"split": "test"}
        assert torch.equal(handle.get_tensor("features"), features)
