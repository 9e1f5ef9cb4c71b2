"""tools/features.py: features of every split exported, classifiers fit on train+val, reported on test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.data.data_helpers import binary_digits_npz
from tests.inference.conftest import make_checkpoint
from tests.recipe_utils import load_tool

GREY = {"kind": "meanstd", "mean": [0.3], "std": [0.35]}


def test_features_classifiers_and_reports(tmp_path, capsys):
    data = binary_digits_npz(tmp_path / "digits38.npz")
    checkpoint = make_checkpoint(tmp_path / "m.safetensors", 1, (8, 8), ("0", "1"), normalization=GREY)
    argv = [str(checkpoint), "--dataset", "npz", "--data-root", str(data), "--workers", "0"]
    argv += [
        "--classifier",
        "all",
        "--cv-folds",
        "3",
        "--output-dir",
        str(tmp_path / "out"),
        "--run-name",
        "f",
    ]
    result = load_tool("features").main(argv)
    folder = Path(result["output_dir"])
    assert folder == tmp_path / "out" / "f"
    sizes = {}
    for split in ("train", "val", "test"):
        tensors = load_file(folder / f"features_{split}.safetensors")
        assert tensors["features"].shape[1] == result["feature_dim"] == 2 * 2 * 2  # hidden 2 × 2 × 2
        sizes[split] = len(tensors["labels"])
    assert sizes == result["samples"] and sizes["test"] == 72 and sum(sizes.values()) == 357
    assert set(result["classifiers"]) == {"logreg", "svm", "gboost"}
    test_labels = load_file(folder / "features_test.safetensors")["labels"]
    for name, entry in result["classifiers"].items():
        cm = torch.tensor(entry["confusion_matrix"])
        assert cm.sum() == 72 and torch.equal(cm.sum(dim=1), torch.bincount(test_labels, minlength=2))
        assert entry["metrics"]["accuracy"] == pytest.approx(float(cm.trace()) / 72)
        report = json.loads((folder / name / "report.json").read_text())
        assert report["roc_auc"] == pytest.approx(entry["metrics"]["roc_auc"], abs=1e-12)
        assert entry["cv_scoring"] == "roc_auc" and 0.0 <= entry["cv_mean"] <= 1.0
    assert (
        json.loads((folder / "results.json").read_text())["classifiers"].keys()
        == result["classifiers"].keys()
    )
    assert "logreg: cv roc_auc" in capsys.readouterr().out


def test_a_backbone_of_another_task_and_bad_cv_folds(tmp_path, capsys):
    data = binary_digits_npz(tmp_path / "digits38.npz")
    ten = tuple(str(i) for i in range(10))
    checkpoint = make_checkpoint(tmp_path / "m.safetensors", 1, (8, 8), ten, normalization=GREY)
    out = tmp_path / "out"
    argv = [str(checkpoint), "--dataset", "npz", "--data-root", str(data), "--output-dir", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        load_tool("features").main([*argv, "--cv-folds", "500"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --cv-folds 500 needs 2 <= K <= ") and "\n" not in err
    assert not out.exists()  # nothing written before the check
    result = load_tool("features").main([*argv, "--classifier", "logreg", "--workers", "0"])
    assert list(result["classifiers"]) == ["logreg"]  # a 10-class backbone, a 2-class task
    assert (
        json.loads((out / Path(result["output_dir"]).name / "logreg" / "report.json").read_text())["n"] == 72
    )
