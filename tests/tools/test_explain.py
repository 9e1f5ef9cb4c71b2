"""tools/explain.py: a run's checkpoint explained on a data-set split and on files; bad input is one line."""

from __future__ import annotations

import csv
import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.models import build_model
from tests.explain.patterns import meanstd_card, save_checkpoint
from tests.recipe_utils import REPO, load_recipe, run_script

TOOL = REPO / "tools" / "explain.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The best checkpoint of a tiny TinyVGG run on digits (8×8 grey, 10 classes), trained in this process."""
    out = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("tinyvgg")
    argv = ["--epochs", "1", "--hidden-units", "4", "--output-dir", str(out), "--workers", "0"]
    return Path(recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)["best_checkpoint"])


def _tool():
    spec = importlib.util.spec_from_file_location("ignite_cv_tool_explain", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(folder: Path) -> list[dict]:
    with open(folder / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam"])
def test_a_data_set_split_is_explained_with_every_output(checkpoint, tmp_path, method, capsys):
    out = tmp_path / "cams"
    argv = [str(checkpoint), "--dataset", "digits", "--split", "test", "--limit", "12", "--method", method]
    summary = _tool().main([*argv, "--class", "true", "--output", str(out), "--batch-size", "5"])
    assert (summary["images"], summary["method"], summary["target_layer"]) == (12, method, "block1")
    rows = _rows(out)
    assert [r["image"] for r in rows] == [f"digits/test/#{i}" for i in range(12)]
    assert {r["method"] for r in rows} == {method} and {r["target_layer"] for r in rows} == {"block1"}
    assert all(r["explained_class"] == r["true_class"] for r in rows)
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
    for kind in ("original", "heatmap", "overlay"):
        assert sorted(p.name for p in (out / kind).iterdir()) == [f"{r['file']}.png" for r in rows]
    assert Image.open(out / "original" / f"{rows[0]['file']}.png").size == (8, 8)
    assert Image.open(out / "overlay" / f"{rows[0]['file']}.png").size[0] == 224
    from ignite_cv.explain.outputs import read_maps

    maps, metadata = read_maps(out / "maps.safetensors")
    assert maps.shape == (12, 8, 8) and maps.dtype == torch.float32
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert metadata["images"] == [r["image"] for r in rows]
    assert (out / "grid.png").stat().st_size > 1000
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == ["explained 5/12 images", "explained 10/12 images"]  # no terminal: plain lines
    assert printed[-1].startswith(f"explained 12 images with {method} at block1 (4×4×4) in ")


def test_files_folders_and_zips_with_feature_maps(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    (tmp_path / "in" / "3").mkdir(parents=True)
    Image.fromarray(picture).save(tmp_path / "in" / "3" / "three.png")
    Image.fromarray(picture).save(tmp_path / "single.jpg")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as handle:
        handle.write(tmp_path / "single.jpg", "digits/7/seven.jpg")
    out = tmp_path / "out"
    argv = [str(checkpoint), str(tmp_path / "in"), str(tmp_path / "single.jpg"), str(tmp_path / "more.zip")]
    _tool().main([*argv, "--feature-maps", "block1,block2.0", "--output", str(out)])
    rows = _rows(out)
    assert [r["image"] for r in rows] == [
        str(tmp_path / "in" / "3" / "three.png"),
        str(tmp_path / "single.jpg"),
        f"{tmp_path / 'more.zip'}::digits/7/seven.jpg",
    ]
    assert [r["true_class"] for r in rows] == ["3", "", "7"]
    names = sorted(p.name for p in (out / "feature_maps").iterdir())
    assert names == sorted(f"{r['file']}_{layer}.png" for r in rows for layer in ("block1", "block2.0"))


def test_list_layers(checkpoint, capsys):
    assert _tool().main([str(checkpoint), "--list-layers"]) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "layers of tinyvgg with a feature map at 8×8 px:"
    assert "  block1 (4×4×4)   <- auto" in lines and "  block2 (4×2×2)" in lines


def _bad_inputs(checkpoint: Path, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(foreign))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    pickled = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickled)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    good_image = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(good_image)
    used = tmp_path / "used"
    used.mkdir()
    (used / "index.csv").write_text("x")
    img = [str(good_image)]
    return {
        "foreign": ([str(foreign), *img], "has no ignite_cv metadata"),
        "truncated": ([str(truncated), *img], "is damaged or truncated"),
        "pickle": ([str(pickled), *img], "is not a safetensors file"),
        "not an image": ([str(checkpoint), str(text)], "none of the 1 inputs is a readable image"),
        "target layer": (
            [str(checkpoint), *img, "--target-layer", "layer4"],
            "choose auto or one of: block1.0,",
        ),
        "class": (
            [str(checkpoint), *img, "--class", "11"],
            "--class '11' is not one of the checkpoint's classes",
        ),
        "used output": ([str(checkpoint), *img, "--output", str(used)], "already exists and is not an empty"),
        "no input": ([str(checkpoint)], "pass images (files, folders, zips) or --dataset"),
    }


@pytest.mark.parametrize(
    "case",
    ["foreign", "truncated", "pickle", "not an image", "target layer", "class", "used output", "no input"],
)
def test_bad_input_is_one_line_exit_2_and_no_output_folder(checkpoint, tmp_path, case, capsys):
    argv, message = _bad_inputs(checkpoint, tmp_path)[case]
    out = tmp_path / "out"
    if "--output" not in argv:
        argv = [*argv, "--output", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        _tool().main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not out.exists()


def test_the_command_line_exits_2_without_a_traceback(checkpoint, tmp_path):
    result = run_script(
        [str(TOOL), str(checkpoint), str(tmp_path / "missing.png"), "--output", str(tmp_path / "o")], tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: no images to explain ({tmp_path / 'missing.png'}: no such file or folder); "
        "pass image files, folders of images or zips"
    )
    assert not (tmp_path / "o").exists()


def test_a_one_logit_rgb_checkpoint_explains_both_classes(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(
        tmp_path / "bin.safetensors",
        build_model("tinyvgg", 3, (16, 16), 1, hidden_units=4),
        meanstd_card("tinyvgg", 3, 16, ["ants", "bees"], hidden_units=4),
    )
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
        tmp_path / "x.png"
    )
    for name in ("ants", "bees"):
        _tool().main(
            [
                str(tmp_path / "bin.safetensors"),
                str(tmp_path / "x.png"),
                "--class",
                name,
                "--output",
                str(tmp_path / name),
            ]
        )
    ants, bees = _rows(tmp_path / "ants")[0], _rows(tmp_path / "bees")[0]
    assert (ants["explained_class"], bees["explained_class"]) == ("ants", "bees")
    assert float(ants["explained_probability"]) + float(bees["explained_probability"]) == pytest.approx(
        1.0, abs=1e-5
    )
