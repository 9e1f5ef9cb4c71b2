"""Two classes end to end on a tiny imbalanced set (digits 0 vs 1, offline): the positive class, the
stored threshold, the binary report, class weights and balanced sampling, per-phase parameter counts,
and bad input refused before a run folder exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ignite_cv.weights import read_card
from tests.recipe_utils import REPO, load_recipe, run_script

TINY = ["--hidden-units", "4", "--workers", "0", "--image-grid-every", "0", "--batch-size", "32"]


def make_binary_npz(path: Path, val_classes=(0, 1), train_classes=(0, 1)) -> Path:
    """Digits 0 (negative, common) vs 1 (rare) as 8×8 uint8, MedMNIST's layout; splits by position."""
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    zeros, ones = np.flatnonzero(digits.target == 0), np.flatnonzero(digits.target == 1)
    parts = {
        "train": (zeros[:120], ones[:40]),
        "val": (zeros[120:150], ones[40:60]),
        "test": (zeros[150:], ones[60:90]),
    }
    arrays = {}
    for split, (neg, pos) in parts.items():
        allowed = {"train": train_classes, "val": val_classes}.get(split, (0, 1))
        index = np.concatenate([neg if 0 in allowed else neg[:0], pos if 1 in allowed else pos[:0]])
        arrays[f"{split}_images"] = images[index]
        arrays[f"{split}_labels"] = (digits.target[index] == 1).astype(np.int64)[:, None]
    np.savez(path, **arrays)
    return path


def _train(argv: list[str], recipe_name: str = "tinyvgg") -> dict:
    recipe = load_recipe(recipe_name)
    config_class = next(v for k, v in vars(recipe).items() if k.endswith("Recipe") and isinstance(v, type))
    return recipe.run_recipe(config_class, argv=argv)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_binary_npz(tmp_path_factory.mktemp("binary") / "digits01.npz")


@pytest.fixture(scope="module")
def flipped_run(data, tmp_path_factory) -> dict:
    """``--positive-class 0``, Youden's threshold, class weights and balanced draws."""
    out = tmp_path_factory.mktemp("runs")
    argv = [
        *("--dataset", "npz", "--data-root", str(data), "--epochs", "3", "--output-dir", str(out)),
        *("--run-name", "flipped", "--positive-class", "0", "--threshold", "youden"),
        *("--class-weights", "balanced", "--sampler", "balanced", *TINY),
    ]
    return _train(argv)


def test_the_positive_class_is_the_logits_class_in_the_card_the_roc_and_the_report(flipped_run):
    run_dir = Path(flipped_run["run_dir"])
    card = read_card(flipped_run["best_checkpoint"])
    assert card.class_names == ["1", "0"]  # positive last: the single logit's class
    assert card.extra["positive_class"] == "0" and card.extra["center_crop"] is False
    roc = json.loads((run_dir / "report" / "roc.json").read_text())
    assert list(roc["curves"]) == ["0"]
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report["positive_class"] == "0"
    classes = json.loads((run_dir / "report" / "classification_report.json").read_text())["classes"]
    # sensitivity is the recall of the positive class "0" (digit 0: 28 test images), specificity that of "1"
    assert report["sensitivity"] == pytest.approx(classes["0"]["recall"])
    assert report["specificity"] == pytest.approx(classes["1"]["recall"])
    assert classes["0"]["support"] == 28 and classes["1"]["support"] == 30
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["positive_class"], config["sampler"], config["class_weights"]) == (
        "0",
        "balanced",
        "balanced",
    )


def test_the_youden_threshold_is_the_validation_splits_and_lives_in_the_reported_checkpoint(
    flipped_run, data
):
    import torch

    from ignite_cv.binary import youden_threshold
    from ignite_cv.pipeline.normalize import build_normalizer
    from ignite_cv.weights import load_model

    threshold = flipped_run["threshold"]
    model, card = load_model(flipped_run["best_checkpoint"])
    assert card.extra["threshold"] == threshold
    npz = np.load(data)
    images = torch.from_numpy(npz["val_images"]).unsqueeze(1).float() / 255
    positive = torch.from_numpy(npz["val_labels"][:, 0] == 0).long()  # "0" is the positive class here
    with torch.no_grad():
        p = torch.sigmoid(model(build_normalizer(card.normalization)(images))).squeeze(1)
    assert threshold == pytest.approx(youden_threshold(positive.numpy(), p.numpy()), abs=1e-6)
    report = json.loads((Path(flipped_run["run_dir"]) / "report" / "report.json").read_text())
    assert report["threshold"] == threshold == flipped_run["test_at_threshold"]["threshold"]


def test_evaluate_uses_the_stored_class_order_and_threshold(flipped_run, data, tmp_path):
    out = tmp_path / "eval"
    result = run_script(
        [
            str(REPO / "tools" / "evaluate.py"),
            flipped_run["best_checkpoint"],
            "--dataset",
            "npz",
            "--data-root",
            str(data),
            "--output-dir",
            str(out),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = json.loads((out / "report.json").read_text())
    reported = json.loads((Path(flipped_run["run_dir"]) / "report" / "report.json").read_text())
    for key in (
        "threshold",
        "positive_class",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "roc_auc",
        "accuracy",
    ):
        assert evaluated[key] == pytest.approx(reported[key], abs=1e-6), key


def test_a_finetune_run_reports_what_each_phase_and_the_whole_run_trained(data, tmp_path):
    """Bug 3 of issue 13: params.trainable must be per phase and overall (head 513; head + layer4)."""
    argv = [
        *("--dataset", "npz", "--data-root", str(data), "--weights", "none", "--mode", "finetune"),
        *("--unfreeze", "1", "--warmup-epochs", "1", "--finetune-epochs", "1", "--image-size", "8"),
        *("--channels", "1", "--normalize", "meanstd", "--augment", "none", "--workers", "0"),
        *("--image-grid-every", "0", "--output-dir", str(tmp_path), "--run-name", "ft"),
    ]
    summary = _train(argv, "resnet_finetune")
    from ignite_cv.models import build_model

    model = build_model("resnet18", 1, (8, 8), 1)
    head = sum(p.numel() for p in model.head.parameters())
    layer4 = sum(p.numel() for p in model.layer4.parameters())
    assert [p["params"]["trainable"] for p in summary["phases"]] == [head, head + layer4]
    assert summary["params"] == {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": head + layer4,
    }
    assert [p["name"] for p in summary["phases"]] == ["warmup", "finetune"]
    assert summary["epochs_run"] == 2


@pytest.mark.parametrize(
    ("flags", "message", "variant"),
    [
        (["--positive-class", "cat"], "--positive-class 'cat' is not a class of the data", {}),
        (
            ["--threshold", "youden"],
            "--threshold youden needs both classes in the validation split",
            {"val_classes": (0,)},
        ),
        (  # an empty training class is refused with the data, before the class weights are computed
            ["--class-weights", "balanced"],
            "has a single class in train_labels",
            {"train_classes": (0,)},
        ),
        (["--focal-alpha", "0.3"], "--focal-alpha set the focal loss, but --loss is ce", {}),
        (
            ["--scheduler", "plateau", "--plateau-monitor", "aucroc"],
            "--plateau-monitor 'aucroc' is not a validation metric",
            {},
        ),
    ],
)
def test_bad_binary_input_is_refused_before_a_run_folder_exists(tmp_path, capsys, flags, message, variant):
    npz = make_binary_npz(tmp_path / "d.npz", **variant)
    out = tmp_path / "runs"
    argv = ["--dataset", "npz", "--data-root", str(npz), "--output-dir", str(out), "--epochs", "1"]
    with pytest.raises(SystemExit) as exit_info:
        _train([*argv, *TINY, *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not out.exists() or [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_a_threshold_on_several_classes_is_one_line_and_exit_2(tmp_path):
    result = run_script(
        [
            str(REPO / "recipes" / "tinyvgg.py"),
            "--threshold",
            "0.3",
            "--output-dir",
            str(tmp_path / "runs"),
            *TINY,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --threshold 0.3 is for two classes; the data has 10; "
        "drop --threshold (several classes take the most probable one)"
    )
    assert not (tmp_path / "runs").exists() or not [
        p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")
    ]


def test_predict_decides_at_the_stored_threshold(flipped_run, data, tmp_path):
    import csv

    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(np.load(data)["test_images"]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    out = tmp_path / "predictions.csv"
    result = run_script(
        [
            str(REPO / "tools" / "predict.py"),
            flipped_run["best_checkpoint"],
            str(folder),
            "--output",
            str(out),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    threshold = flipped_run["threshold"]
    assert len(rows) == 58
    for row in rows:
        expected = "0" if float(row["prob_0"]) >= threshold else "1"
        assert row["predicted"] == expected, row
    report = json.loads((Path(flipped_run["run_dir"]) / "report" / "report.json").read_text())
    positives = sum(row["predicted"] == "0" for row in rows)
    at = flipped_run["test_at_threshold"]
    assert positives == at["tp"] + at["fp"]  # the same calls as the run's report at its threshold
    assert report["threshold"] == threshold


def test_a_best_file_damaged_after_its_write_is_rewritten_and_keeps_the_threshold(
    data, tmp_path, monkeypatch, capsys
):
    # The test split is evaluated with the best weights in memory while the best file is read back
    # beside it; a file that fails its checksum then (a disk that corrupted it) is rewritten from them.
    from ignite_cv.handlers.checkpoint import SafetensorsSaver
    from ignite_cv.weights import read_tensors

    waited = SafetensorsSaver.wait_for

    def corrupt_after_write(self, path):
        waited(self, path)
        damaged = bytearray(Path(path).read_bytes())
        damaged[-10] ^= 0xFF
        Path(path).write_bytes(bytes(damaged))

    monkeypatch.setattr(SafetensorsSaver, "wait_for", corrupt_after_write)
    argv = [
        *("--dataset", "npz", "--data-root", str(data), "--epochs", "1", "--output-dir", str(tmp_path)),
        *("--threshold", "0.4", *TINY),
    ]
    summary = _train(argv)
    out = capsys.readouterr().out
    best = Path(summary["best_checkpoint"])
    assert f"warning: {best} fails its checksum" in out
    assert f"rewrote {best} from the best weights of epoch 1" in out
    last = next(best.parent.glob("last_epoch=1*.safetensors"))
    stored, weights = read_tensors(best), read_tensors(last)  # both pass their checksums
    assert stored.keys() == weights.keys() and all(stored[k].equal(weights[k]) for k in stored)
    assert read_card(best).extra["threshold"] == summary["threshold"] == 0.4
