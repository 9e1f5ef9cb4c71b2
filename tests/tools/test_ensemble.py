"""tools/ensemble.py and a manifest given to tools/evaluate.py: reports, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.data_helpers import binary_digits_npz
from tests.inference.conftest import make_checkpoint
from tests.recipe_utils import load_tool

GREY = {"kind": "meanstd", "mean": [0.3], "std": [0.35]}


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("tool-ens")
    data = binary_digits_npz(root / "digits38.npz")
    paths = [
        make_checkpoint(root / f"m{i}.safetensors", 1, (8, 8), ("0", "1"), normalization=GREY, seed=i)
        for i in range(2)
    ]
    return data, paths


def _error(capsys, tool: str, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_the_tool_writes_a_report_and_a_manifest_that_evaluate_reads(members, tmp_path, capsys):
    data, paths = members
    data_args = ["--dataset", "npz", "--data-root", str(data), "--workers", "0"]
    out = tmp_path / "ens"
    result = load_tool("ensemble").main(
        [*map(str, paths), "--weights", "1", "2", *data_args, "--output-dir", str(out)]
    )
    printed = capsys.readouterr().out
    assert f"report folder: {out}" in printed and (out / "report.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["metrics"] == result["metrics"]
    again = load_tool("evaluate").main(
        [str(out / "ensemble.json"), *data_args, "--output-dir", str(tmp_path / "ev")]
    )
    assert again["metrics"] == result["metrics"]

    make_checkpoint(paths[1], 1, (8, 8), ("0", "1"), normalization=GREY, seed=9)  # replaced after the fact
    err = _error(capsys, "evaluate", [str(out / "ensemble.json"), *data_args])
    assert "m1.safetensors has changed since the ensemble manifest" in err and "rebuild the manifest" in err


def test_checkpoints_with_different_classes_are_a_one_line_error(members, tmp_path, capsys):
    data, paths = members
    other = make_checkpoint(tmp_path / "other.safetensors", 1, (8, 8), ("no", "yes"), normalization=GREY)
    err = _error(
        capsys, "ensemble", [str(paths[0]), str(other), "--dataset", "npz", "--data-root", str(data)]
    )
    assert "the checkpoints have different class names" in err
    err = _error(capsys, "ensemble", [str(paths[0]), "--weights", "1", "1", "--dataset", "npz"])
    assert "2 weights for 1 checkpoints" in err
