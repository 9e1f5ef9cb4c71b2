"""The ensemble's predictor: one member is that member; weights mix; the widest input is decoded once."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.ensemble.manifest import write_manifest
from ignite_cv.ensemble.predictor import EnsemblePredictor, load_ensemble
from ignite_cv.inference.predictor import Predictor
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import make_checkpoint, random_image

IMAGES = [random_image(i, size=(14, 11)) for i in range(5)]


def test_an_ensemble_of_one_predicts_exactly_as_its_checkpoint(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", seed=1)
    write_manifest(tmp_path / "e.json", [a], [3.0])
    ensemble = load_ensemble(tmp_path / "e.json", device="cpu")
    alone = Predictor.from_checkpoint(a, "cpu").predict(IMAGES)
    mixed = ensemble.predict(IMAGES)
    assert torch.equal(mixed.probabilities, alone.probabilities)
    assert mixed.labels == alone.labels


def test_members_are_averaged_with_their_weights(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", seed=1)
    b = make_checkpoint(tmp_path / "b.safetensors", seed=2)
    write_manifest(tmp_path / "e.json", [a, b], [3.0, 1.0])
    mixed = load_ensemble(tmp_path / "e.json", device="cpu").predict(IMAGES).probabilities
    pa = Predictor.from_checkpoint(a, "cpu").predict(IMAGES).probabilities
    pb = Predictor.from_checkpoint(b, "cpu").predict(IMAGES).probabilities
    assert torch.allclose(mixed, 0.75 * pa + 0.25 * pb, atol=1e-7)
    assert not torch.allclose(pa, pb, atol=1e-3)  # the test would be void with equal members


def test_members_of_other_sizes_and_channels_are_fed_their_own_input(tmp_path):
    small_grey = make_checkpoint(tmp_path / "g.safetensors", channels=1, size=(8, 8), seed=1)
    large_rgb = make_checkpoint(tmp_path / "c.safetensors", channels=3, size=(12, 12), seed=2)
    write_manifest(tmp_path / "e.json", [small_grey, large_rgb], [0.0, 1.0])
    ensemble = load_ensemble(tmp_path / "e.json", device="cpu")
    assert (ensemble.preprocessing.channels, ensemble.preprocessing.size) == (3, (12, 12))
    # the widest member sees exactly its own decoding (weight 1: the result is its probabilities)
    alone = Predictor.from_checkpoint(large_rgb, "cpu").predict(IMAGES).probabilities
    assert torch.equal(ensemble.predict(IMAGES).probabilities, alone)
    seen = []
    grey = ensemble.members[0]
    original = grey.probabilities
    grey.probabilities = lambda x: seen.append(tuple(x.shape)) or original(x)
    ensemble.predict(IMAGES[:2])
    assert seen == [(2, 1, 8, 8)]


def test_members_that_disagree_on_centre_crop_are_refused(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", extra={"center_crop": True})
    b = make_checkpoint(tmp_path / "b.safetensors", extra={"center_crop": False})
    members = [Predictor.from_checkpoint(p, "cpu") for p in (a, b)]
    with pytest.raises(UserError, match="disagree on centre crop"):
        EnsemblePredictor(members, [1.0, 1.0])


def test_a_shared_stored_threshold_is_kept_and_info_names_the_members(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", extra={"threshold": 0.3}, seed=1)
    b = make_checkpoint(tmp_path / "b.safetensors", extra={"threshold": 0.3}, seed=2)
    c = make_checkpoint(tmp_path / "c.safetensors", extra={"threshold": 0.7}, seed=3)
    write_manifest(tmp_path / "ab.json", [a, b])
    write_manifest(tmp_path / "ac.json", [a, c])
    shared = load_ensemble(tmp_path / "ab.json", device="cpu")
    assert shared.rule.threshold == 0.3 and shared.rule.stored
    assert load_ensemble(tmp_path / "ac.json", device="cpu").rule.threshold == 0.5
    info = dict(shared.info().rows())
    assert info["checkpoint"] == str(tmp_path / "ab.json")
    assert info["architecture"].startswith("ensemble of 2: a.safetensors ×0.5, b.safetensors ×0.5")
