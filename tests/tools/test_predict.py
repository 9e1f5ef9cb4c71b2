"""tools/predict.py: a sorted CSV equal to predict(), unreadable files listed, one-line errors."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ignite_cv import predict
from tests.inference.conftest import make_checkpoint, write_png_header
from tests.recipe_utils import REPO, run_script

TOOL = REPO / "tools" / "predict.py"


def _tool():
    spec = importlib.util.spec_from_file_location("ignite_cv_tool_predict", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def _one_line_error(stderr: str) -> str:
    err = stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_the_csv_lists_every_file_sorted_and_equals_predict_exactly(digits_run, digit_files, tmp_path):
    root, labels = digit_files
    folder = tmp_path / "in"
    folder.symlink_to(root, target_is_directory=True)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    checkpoint = digits_run["best_checkpoint"]
    out = tmp_path / "out" / "predictions.csv"
    argv = [str(TOOL), checkpoint, "in", "broken.png", "--output", str(out), "--top-k", "3", "--workers", "1"]
    result = run_script(argv, cwd=tmp_path)  # a real process, stdout not a terminal
    assert result.returncode == 0, result.stderr[-3000:]
    assert "40 images predicted, 1 skipped" in result.stdout and "41 rows written" in result.stdout
    assert "40/41 images" not in result.stdout and "41/41 images" in result.stdout  # plain progress lines
    assert "skipped broken.png: damaged or truncated image data" in result.stderr

    columns, rows = _read(out)
    names = [f"prob_{i}" for i in range(10)]
    assert columns == ["path", "status", "predicted", "probability", *names,
                       "top1", "top1_probability", "top2", "top2_probability", "top3", "top3_probability",
                       "reason"]  # fmt: skip
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    assert rows[0]["path"] == "broken.png" and rows[0]["status"] == "skipped" and rows[0]["predicted"] == ""
    ok = rows[1:]
    assert [r["path"] for r in ok] == sorted(f"in/{p.relative_to(root)}" for p in root.rglob("*.png"))

    # The Python API on the same folder (same batches) gives the same bits.
    api = predict(checkpoint, str(folder), device="cpu")
    assert [f"in/{Path(s).relative_to(folder)}" for s in api.sources] == [r["path"] for r in ok]
    csv_probs = np.array([[np.float32(r[n]) for n in names] for r in ok], dtype=np.float32)
    np.testing.assert_array_equal(csv_probs, api.probabilities.numpy())
    assert [r["predicted"] for r in ok] == api.labels
    assert [r["top1"] for r in ok] == api.labels
    # Accuracy from the CSV equals the accuracy of predict() (the model is barely trained: both low).
    accuracy = np.mean([int(r["predicted"]) == y for r, y in zip(ok, labels)])
    assert accuracy == np.mean([int(p.label) == y for p, y in zip(api, labels)])


def test_one_image_from_the_cli_equals_predict_exactly(digits_run, digit_files, tmp_path):
    root, _ = digit_files
    image = root / "007.png"
    out = tmp_path / "one.csv"
    result = _tool().main([digits_run["best_checkpoint"], str(image), "--output", str(out), "--workers", "0"])
    _, rows = _read(out)
    expected = predict(digits_run["best_checkpoint"], str(image), device="cpu")[0]
    assert result[0].probabilities == expected.probabilities
    assert [r["path"] for r in rows] == [str(image)] and rows[0]["predicted"] == expected.label
    assert [np.float32(rows[0][f"prob_{i}"]) for i in range(10)] == [
        np.float32(expected.probabilities[str(i)]) for i in range(10)
    ]


def test_strict_stops_at_an_unreadable_image_and_writes_nothing(digits_run, digit_files, tmp_path, capsys):
    root, _ = digit_files
    (tmp_path / "bad.jpg").write_text("no jpeg")
    out = tmp_path / "p.csv"
    argv = [
        digits_run["best_checkpoint"],
        str(root),
        str(tmp_path / "bad.jpg"),
        "--output",
        str(out),
        "--strict",
    ]
    with pytest.raises(SystemExit) as exit_info:
        _tool().main(argv)
    assert exit_info.value.code == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "cannot read image" in err and "bad.jpg" in err and "--strict" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    write_png_header(tmp_path / "huge.png", 20_000, 20_000)
    return {
        "missing": (["nowhere/"], "input nowhere/ does not exist"),
        "empty folder": ([str(tmp_path / "empty")], "has no image files"),
        "not an image": ([str(tmp_path / "notes.txt")], "notes.txt: not a readable image"),
        "bomb": ([str(tmp_path / "huge.png")], "too many pixels (Image size (400000000 pixels) exceeds"),
    }


@pytest.mark.parametrize("case", ["missing", "empty folder", "not an image", "bomb"])
def test_bad_inputs_are_one_line_errors_and_write_nothing(digits_run, tmp_path, capsys, case):
    inputs, expected = _bad_inputs(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([digits_run["best_checkpoint"], *inputs, "--output", str(tmp_path / "p.csv")])
    assert exit_info.value.code == 2
    assert expected in _one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_pickle_is_refused_in_one_line_by_the_real_process(digit_files, tmp_path):
    root, _ = digit_files
    torch.save({"weight": torch.zeros(2)}, tmp_path / "model.pth")
    result = run_script([str(TOOL), "model.pth", str(root), "--output", "p.csv"], cwd=tmp_path)
    assert result.returncode == 2
    assert "model.pth is not a safetensors file" in _one_line_error(result.stderr)
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("bare.safetensors", "has no ignite_cv metadata"), ("missing.safetensors", "does not exist")],
)
def test_foreign_checkpoints_are_refused_in_one_line(digit_files, tmp_path, capsys, name, expected):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([str(tmp_path / name), str(digit_files[0]), "--output", str(tmp_path / "p.csv")])
    assert exit_info.value.code == 2
    assert expected in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "p.csv").exists()


def test_cam_needs_the_explain_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ignite_cv.explain", None)
    checkpoint = make_checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(SystemExit):
        _tool().main(
            [str(checkpoint), str(tmp_path), "--cam", "gradcam", "--output", str(tmp_path / "p.csv")]
        )
    assert "--cam needs the explain package" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "p.csv").exists()
