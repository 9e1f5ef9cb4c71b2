"""Evaluating an ensemble on a data split: one member is its evaluation; members mix with their weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ignite_cv.data.sources import load_data
from ignite_cv.ensemble.evaluate import EnsembleOptions, evaluate_ensemble, evaluate_manifest
from ignite_cv.ensemble.manifest import write_manifest
from ignite_cv.evaluation import EvaluationOptions, evaluate_checkpoint
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.roc import roc_auc
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import load_model
from tests.data.data_helpers import binary_digits_npz
from tests.inference.conftest import make_checkpoint

GREY = {"kind": "meanstd", "mean": [0.3], "std": [0.35]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("ens")
    data = binary_digits_npz(root / "digits38.npz")
    members = [
        make_checkpoint(root / f"m{i}.safetensors", 1, (8, 8), ("0", "1"), normalization=GREY, seed=i)
        for i in range(2)
    ]
    return data, members


def _options(data: Path, out: Path, **extra) -> dict:
    return {"dataset": "npz", "data_root": str(data), "workers": 0, "output_dir": str(out), **extra}


def test_an_ensemble_of_one_checkpoint_equals_its_evaluation(setup, tmp_path):
    data, (member, _) = setup
    alone = evaluate_checkpoint(
        member, EvaluationOptions(**_options(data, tmp_path / "alone")), say=lambda m: None
    )
    mixed = evaluate_ensemble(
        [member], None, EnsembleOptions(**_options(data, tmp_path / "mixed")), lambda m: None
    )
    assert mixed["confusion_matrix"] == alone["confusion_matrix"]
    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"):
        assert mixed["metrics"][name] == alone["metrics"][name], name
    assert mixed["metrics"]["loss"] == pytest.approx(alone["metrics"]["loss"], rel=1e-6)
    assert mixed["report"]["roc_auc"] == alone["report"]["roc_auc"]
    assert mixed["report"]["files"] == alone["report"]["files"]
    assert mixed["members"][0]["metrics"] == alone["metrics"]


def test_a_weighted_ensemble_averages_the_members_probabilities(setup, tmp_path):
    data, members = setup
    manifest = tmp_path / "e.json"
    write_manifest(manifest, members, [1.0, 3.0])
    result = evaluate_manifest(manifest, EnsembleOptions(**_options(data, tmp_path / "r")), lambda m: None)
    split = load_data(EnsembleOptions(**_options(data, tmp_path)), 0).test
    probs = []
    for path in members:
        model, card = load_model(path)
        pipeline = BatchPipeline(build_normalizer(card.normalization))
        with torch.inference_mode():
            logits = model(pipeline(split.images)).float()
        probs.append(torch.cat([torch.zeros_like(logits), logits], dim=1).softmax(dim=1))
    mean = 0.25 * probs[0] + 0.75 * probs[1]
    labels = split.labels
    assert result["n"] == len(labels) == 72
    assert result["metrics"]["accuracy"] == pytest.approx(float((mean.argmax(1) == labels).double().mean()))
    assert result["metrics"]["roc_auc"] == pytest.approx(roc_auc(labels, mean), abs=1e-6)
    saved = json.loads((Path(result["output_dir"]) / "ensemble.json").read_text())
    assert [m["weight"] for m in saved["members"]] == [1.0, 3.0]


def test_options_that_do_not_apply_to_an_ensemble_are_refused(setup, tmp_path):
    data, members = setup
    with pytest.raises(UserError, match="--image-size and --channels do not apply"):
        evaluate_ensemble(members, None, EnsembleOptions(**_options(data, tmp_path, image_size=16)))
    with pytest.raises(UserError, match="1 weights for 2 checkpoints"):
        evaluate_ensemble(members, [1.0], EnsembleOptions(**_options(data, tmp_path)))
