"""End to end on digits (bundled with scikit-learn, offline): run folder, summary, checkpoints, output."""

from __future__ import annotations

import json

import pytest

from ignite_cv.models import build_model
from tests.recipe_utils import REPO, load_recipe, run_script

EPOCHS = 3


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("tinyvgg")
    summary = recipe.run_recipe(
        recipe.TinyVGGRecipe,
        argv=[
            "--epochs",
            str(EPOCHS),
            "--output-dir",
            str(out),
            "--run-name",
            "digits",
            "--workers",
            "0",
            "--hidden-units",
            "8",
            "--image-grid-every",
            "1",
        ],
    )
    return out / "digits", summary


def test_run_folder_holds_everything_a_run_promises(digits_run):
    run_dir, summary = digits_run
    assert summary["run_dir"] == str(run_dir)
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == EPOCHS
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert {"train/loss", "val/loss", "val/accuracy", "val/roc_auc", "lr"} <= set(rows[0])
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert list((run_dir / "checkpoints").glob("best_epoch=*.safetensors"))
    assert len(list((run_dir / "checkpoints").glob("last_epoch=*.safetensors"))) == 1
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["test"]["accuracy"] > 0.8
    assert saved["epochs_run"] == EPOCHS
    assert saved["best"]["metric"] == "accuracy" and 1 <= saved["best"]["epoch"] <= EPOCHS
    model = build_model("tinyvgg", 1, (8, 8), 10, hidden_units=8)
    assert (
        saved["params"]["total"] == saved["params"]["trainable"] == sum(p.numel() for p in model.parameters())
    )
    assert 0 < saved["wall_time_s"] == pytest.approx(sum(p["wall_time_s"] for p in saved["phases"]), abs=30)
    report = run_dir / "report"
    cm_rows = (report / "confusion_matrix.csv").read_text().splitlines()[1:]
    assert sum(int(v) for row in cm_rows for v in row.split(",")[1:]) == saved["data"]["test"]


def test_tensorboard_has_train_val_lr_text_and_images(digits_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = digits_run
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "tensors": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr/group_0"} <= scalars
    assert len(events.Scalars("val/accuracy")) == EPOCHS
    assert events.Tags()["images"], "validation image grid missing"
    text_tags = set(events.Tags()["tensors"])
    assert any("config" in t for t in text_tags) and any("summary" in t for t in text_tags)


def test_checkpoint_alone_reproduces_test_metrics_in_a_fresh_process(digits_run, tmp_path):
    run_dir, summary = digits_run
    script = f"""
import json, torch
from types import SimpleNamespace
from ignite_cv.weights import load_model
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.data.sources import load_data
model, card = load_model({summary["best_checkpoint"]!r})
config = json.load(open({str(run_dir / "config.json")!r}))
data = load_data(SimpleNamespace(**config), config["seed"])
x = build_normalizer(card.normalization)(data.test.images.float() / 255)
with torch.no_grad():
    logits = model(x)
pred = logits.argmax(1) if logits.shape[1] > 1 else (logits[:, 0] > 0).long()
print(json.dumps({{"accuracy": (pred == data.test.labels).float().mean().item()}}))
"""
    result = run_script(["-c", script], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    assert fresh["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-6)


def test_output_to_a_file_is_one_line_per_epoch(tmp_path):
    result = run_script(
        [str(REPO / "recipes" / "mlp.py"), "--epochs", "2", "--output-dir", str(tmp_path), "--workers", "0"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert result.stdout.strip().splitlines()[-1].startswith("run folder: ")


def test_a_folder_with_broken_files_trains_on_everything_readable(tmp_path):
    from tests.data.data_helpers import make_messy_tree

    root = make_messy_tree(tmp_path / "messy")
    recipe = load_recipe("tinyvgg")
    summary = recipe.run_recipe(
        recipe.TinyVGGRecipe,
        argv=[
            "--dataset",
            "folder",
            "--data-root",
            str(root),
            "--image-size",
            "16",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--hidden-units",
            "4",
            "--workers",
            "0",
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-name",
            "messy",
        ],
    )
    data = summary["data"]
    # 100 plain images + CMYK, 16-bit, RGBA and upper-case .JPG converted; 3 unreadable skipped
    assert data["train"] + data["val"] + data["test"] == 104
    assert data["skipped"] == 3
    listed = (tmp_path / "runs" / "messy" / "data_skipped.txt").read_text()
    assert all(name in listed for name in ("corrupt.jpg", "truncated.jpg", "notes.txt"))
    assert "zz_cmyk" not in listed and "zz_deep" not in listed and "zz_rgba" not in listed


def test_profile_and_prune_after_write_into_the_run_folder(tmp_path):
    recipe = load_recipe("tinyvgg")
    summary = recipe.run_recipe(
        recipe.TinyVGGRecipe,
        argv=[
            "--epochs",
            "1",
            "--hidden-units",
            "8",
            "--workers",
            "0",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "p",
            "--profile",
            "--profile-warmup-steps",
            "2",
            "--profile-trace-steps",
            "2",
            "--prune-after",
            "0.5",
            "--prune-finetune-epochs",
            "1",
        ],
    )
    run_dir = tmp_path / "p"
    profile = summary["phases"][0]["profile"]
    assert profile["largest"] and (run_dir / "profile" / "timing.md").is_file()
    assert list((run_dir / "profile" / "trace").iterdir())
    pruning = summary["pruning"]
    assert pruning["after"]["macs"] < pruning["before"]["macs"]
    from ignite_cv.weights import load_model

    pruned, card = load_model(run_dir / "pruning" / "pruned.safetensors")
    assert card.extra["pruning_history"]
    assert sum(p.numel() for p in pruned.parameters()) == pruning["after"]["params"]


def test_two_runs_with_the_same_seed_give_the_same_metrics(tmp_path):
    recipe = load_recipe("tinyvgg")
    args = ["--epochs", "2", "--hidden-units", "4", "--workers", "0", "--augment", "standard", "--output-dir"]
    first = recipe.run_recipe(recipe.TinyVGGRecipe, argv=[*args, str(tmp_path / "a"), "--seed", "5"])
    second = recipe.run_recipe(recipe.TinyVGGRecipe, argv=[*args, str(tmp_path / "b"), "--seed", "5"])
    other = recipe.run_recipe(recipe.TinyVGGRecipe, argv=[*args, str(tmp_path / "c"), "--seed", "6"])
    assert first["test"] == second["test"]
    assert first["test"] != other["test"]


def test_a_run_keeps_its_curves_and_gives_tensorboard_its_hparams(digits_run):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, saved = digits_run
    with Image.open(run_dir / "report" / "curves.png") as image:
        assert image.text["Description"] == f"epochs 1-{EPOCHS}"  # the last epoch is drawn when training ends
    events = EventAccumulator(str(run_dir / "tb" / "hparams"))
    events.Reload()
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(saved["test"]["accuracy"])
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def _best_of_epoch(model, epoch: int):
    from ignite_cv.handlers.best_weights import BestWeights

    best = BestWeights(model, monitor=None)
    best.best_epoch, best._state = epoch, {k: v.clone() for k, v in model.state_dict().items()}
    return best


def test_the_test_split_sees_the_run_model_when_it_holds_the_best_files_epoch(tmp_path):
    from types import SimpleNamespace

    import torch

    from ignite_cv.engine import StepOptions
    from ignite_cv.training.fit import _test_net

    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4)
    parts = SimpleNamespace(best=_best_of_epoch(model, 3), step=StepOptions(), device=torch.device("cpu"))
    run_model = SimpleNamespace(model=model)
    assert _test_net(run_model, parts, tmp_path / "best_epoch=3_accuracy=0.5000.safetensors") is model
    assert _test_net(run_model, parts, None) is model


def test_the_test_split_sees_the_file_when_it_names_another_epoch(tmp_path):
    from types import SimpleNamespace

    import torch

    from ignite_cv.engine import StepOptions
    from ignite_cv.training.fit import _test_net
    from ignite_cv.weights import ModelCard, save_model

    torch.manual_seed(0)
    stored = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4)
    card = ModelCard("tinyvgg", {"hidden_units": 4}, ["a", "b", "c"], 1, [8, 8], 3, {"kind": "none"})
    path = tmp_path / "best_epoch=13_accuracy=0.5000.safetensors"
    save_model(path, stored, card)
    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4)  # other weights, "of epoch 1"
    options = StepOptions(channels_last=True)
    parts = SimpleNamespace(best=_best_of_epoch(model, 1), step=options, device=torch.device("cpu"))
    net = _test_net(SimpleNamespace(model=model), parts, path)
    assert net is not model
    assert all(torch.equal(v, stored.state_dict()[k]) for k, v in net.state_dict().items())
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
