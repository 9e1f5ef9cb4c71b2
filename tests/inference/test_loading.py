"""load_predictor: a checkpoint or an ensemble manifest; foreign files are one-line errors."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.ensemble.manifest import write_manifest
from ignite_cv.ensemble.predictor import EnsemblePredictor
from ignite_cv.inference.loading import load_predictor
from ignite_cv.inference.predictor import Predictor
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import make_checkpoint


def test_a_checkpoint_or_a_manifest(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "a.safetensors")
    single = load_predictor(checkpoint, "cpu")
    assert type(single) is Predictor
    write_manifest(tmp_path / "ensemble.json", [checkpoint])
    ensemble = load_predictor(tmp_path / "ensemble.json", "cpu")
    assert isinstance(ensemble, EnsemblePredictor) and ensemble.class_names == ["cat", "dog"]


def test_foreign_files_and_manifests_are_one_line_errors(tmp_path):
    pickled = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(1)}, pickled)
    with pytest.raises(UserError, match="is not a safetensors file"):
        load_predictor(pickled, "cpu")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(UserError, match="has no ignite_cv metadata"):
        load_predictor(tmp_path / "bare.safetensors", "cpu")
    (tmp_path / "ensemble.json").write_text("{}")
    with pytest.raises(UserError, match="is not an ensemble manifest"):
        load_predictor(tmp_path / "ensemble.json", "cpu")
