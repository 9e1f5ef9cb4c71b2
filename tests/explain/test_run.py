"""explain_checkpoint: pruned and extract-mode checkpoints, classes to explain, files and skipped inputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import ignite_cv.prune.core as pruning
from ignite_cv.explain.cam import compute_cams
from ignite_cv.explain.outputs import read_maps
from ignite_cv.explain.preprocess import CardInput
from ignite_cv.explain.run import ExplainOptions, describe_layers, explain_checkpoint
from ignite_cv.models import build_model
from ignite_cv.models.freezing import freeze_backbone
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import load_model
from tests.explain.patterns import meanstd_card, save_checkpoint


def _images(root, classes, per_class=2, size=20, mode="RGB"):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _rows(folder):
    with open(folder / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_pruned_checkpoint_is_rebuilt_and_explained_like_the_model_in_memory(tmp_path):
    torch.manual_seed(0)
    classes = ["a", "b", "c"]
    model = build_model("tinyvgg", 3, (16, 16), 3, hidden_units=8).eval()
    card = meanstd_card("tinyvgg", 3, 16, classes, hidden_units=8)
    result = pruning.prune(model, torch.zeros(1, 3, 16, 16), ratio=0.5)
    pruning.save_pruned(tmp_path / "pruned.safetensors", model, card, result)
    images = _images(tmp_path / "imgs", classes)
    summary = explain_checkpoint(
        tmp_path / "pruned.safetensors",
        tmp_path / "out",
        ExplainOptions(method="gradcam++"),
        [str(images)],
        say=str,
    )
    assert summary["images"] == 6 and summary["target_layer"] == "block2" and summary["skipped"] == 0
    maps, metadata = read_maps(tmp_path / "out" / "maps.safetensors")
    assert maps.shape == (6, 16, 16) and metadata["method"] == "gradcam++"
    prepare = CardInput(card)
    files = sorted(str(p) for p in images.rglob("*.png"))
    expected = compute_cams(
        model, prepare(torch.stack([prepare.decode(f) for f in files])), "block2", "gradcam++"
    )
    assert torch.allclose(maps, expected.maps, atol=1e-5)
    rows = _rows(tmp_path / "out")
    assert [r["image"] for r in rows] == metadata["images"] == files
    assert [r["true_class"] for r in rows] == ["a", "a", "b", "b", "c", "c"]  # from the class folders
    assert [r["predicted_class"] for r in rows] == [classes[i] for i in expected.predicted.tolist()]


def test_an_extract_mode_checkpoint_is_explained(tmp_path):
    """A ResNet trained with a frozen backbone (only the head trainable when it was saved), grey input."""
    torch.manual_seed(0)
    model = build_model("resnet18", 1, (32, 32), 1)
    freeze_backbone(model)
    card = meanstd_card("resnet18", 1, 32, ["NORMAL", "PNEUMONIA"])
    save_checkpoint(tmp_path / "extract.safetensors", model, card)
    images = _images(tmp_path / "imgs", ["PNEUMONIA"], per_class=3, mode="L")
    for method in ("gradcam", "gradcam++"):
        out = tmp_path / f"out-{method}"
        options = ExplainOptions(method=method, class_choice="true")
        summary = explain_checkpoint(tmp_path / "extract.safetensors", out, options, [str(images)], say=str)
        assert (summary["images"], summary["target_layer"]) == (3, "layer2")
        assert {r["explained_class"] for r in _rows(out)} == {"PNEUMONIA"}
        maps, _ = read_maps(out / "maps.safetensors")
        assert maps.shape == (3, 32, 32) and bool((maps.flatten(1).amax(1) > 0).all())


def test_the_class_to_explain_and_its_errors(tmp_path):
    classes = ["cat", "dog"]
    save_checkpoint(
        tmp_path / "m.safetensors",
        build_model("tinyvgg", 3, (8, 8), 1, hidden_units=2),
        meanstd_card("tinyvgg", 3, 8, classes, hidden_units=2),
    )
    loose = tmp_path / "loose"
    _images(loose, ["x"], per_class=1, size=8)
    named = explain_checkpoint(
        tmp_path / "m.safetensors", tmp_path / "o1", ExplainOptions(class_choice="dog"), [str(loose)], say=str
    )
    assert named["images"] == 1 and _rows(tmp_path / "o1")[0]["explained_class"] == "dog"
    with pytest.raises(
        UserError,
        match="'cow' is not one of the checkpoint's classes; choose predicted, true or one of: cat, dog$",
    ):
        explain_checkpoint(
            tmp_path / "m.safetensors", tmp_path / "o2", ExplainOptions(class_choice="cow"), [str(loose)]
        )
    with pytest.raises(UserError, match="--class true needs each image's true class, and 1 images have none"):
        explain_checkpoint(
            tmp_path / "m.safetensors", tmp_path / "o3", ExplainOptions(class_choice="true"), [str(loose)]
        )
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_unreadable_files_are_skipped_and_listed(tmp_path):
    save_checkpoint(
        tmp_path / "m.safetensors",
        build_model("tinyvgg", 1, (8, 8), 3, hidden_units=2),
        meanstd_card("tinyvgg", 1, 8, ["a", "b", "c"], hidden_units=2),
    )
    images = _images(tmp_path / "imgs", ["a"], per_class=2, size=8, mode="L")
    (images / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    summary = explain_checkpoint(
        tmp_path / "m.safetensors", tmp_path / "out", ExplainOptions(), [str(images)], say=str
    )
    assert (summary["images"], summary["skipped"]) == (2, 1)
    skipped = (tmp_path / "out" / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(f"{images / 'a' / 'broken.png'}: ")
    assert len(_rows(tmp_path / "out")) == 2


def test_list_layers_marks_the_auto_choice(tmp_path):
    save_checkpoint(
        tmp_path / "m.safetensors",
        build_model("tinyvgg", 1, (28, 28), 3, hidden_units=4),
        meanstd_card("tinyvgg", 1, 28, ["a", "b", "c"], hidden_units=4),
    )
    model, card = load_model(tmp_path / "m.safetensors")
    text = describe_layers(model, card)
    assert text.splitlines()[0] == "layers of tinyvgg with a feature map at 28×28 px:"
    assert "  block2 (4×7×7)   <- auto" in text.splitlines()
    assert "  block1 (4×14×14)" in text.splitlines()
