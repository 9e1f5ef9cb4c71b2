"""tools/profile.py and tools/prune.py: results saved, checkpoints only read, bad input as one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ignite_cv.models import build_model
from ignite_cv.profile.model import count_macs_params
from ignite_cv.prune.core import example_input_for, prune, save_pruned
from ignite_cv.prune.history import HISTORY_KEY
from ignite_cv.weights import ModelCard, load_model, save_model
from tests.recipe_utils import load_tool

REPO = Path(__file__).resolve().parents[2]
DIGITS = [str(i) for i in range(10)]


def _tool(name: str):
    return load_tool(name)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checkpoint(path: Path, classes: list[str] = DIGITS) -> tuple[Path, ModelCard]:
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), len(classes), hidden_units=8)
    card = ModelCard("tinyvgg", {"hidden_units": 8}, classes, 1, [8, 8], len(classes), {"kind": "none"})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, model, card)
    return path, card


def _user_error(capsys, main, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_profile_saves_figures_and_compares(tmp_path, capsys):
    tool = _tool("profile")
    ckpt, card = _checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    model, _ = load_model(ckpt)
    result = prune(model, example_input_for(card), ratio=0.5)
    pruned = tmp_path / "pruned.safetensors"
    save_pruned(pruned, model, card, result)
    digest = _sha(ckpt)
    fast = ["--batch-size", "4", "--repeats", "2", "--warmup", "0"]

    out = tool.main([str(ckpt), *fast])
    saved = json.loads((tmp_path / "run" / "profile" / "best.profile.json").read_text())
    assert saved["profile"]["macs"] == out["profile"]["macs"] == result.macs_before
    assert [s["batch_size"] for s in saved["profile"]["latency"]] == [1, 4]
    assert "latency batch 4, median (ms)" in capsys.readouterr().out

    out = tool.main([str(ckpt), "--compare", str(pruned), "--output-dir", str(tmp_path / "cmp"), *fast])
    assert out["compare"]["macs"] == result.macs_after and out["compare"]["extra"]["pruned"]
    text = (tmp_path / "cmp" / "best-vs-pruned.profile.md").read_text()
    assert "second / first" in text and f"{result.macs_after / result.macs_before:.3f}×" in text
    assert _sha(ckpt) == digest

    assert "does not exist" in _user_error(capsys, tool.main, [str(tmp_path / "missing.safetensors")])


def test_prune_tool_prunes_finetunes_and_saves_a_reloadable_model(tmp_path, capsys):
    tool = _tool("prune")
    ckpt, card = _checkpoint(tmp_path / "model.safetensors")
    digest = _sha(ckpt)
    summary = tool.main(
        [
            str(ckpt),
            "--dataset",
            "digits",
            "--speedup",
            "1.5",
            "--finetune-epochs",
            "1",
            "--batch-size",
            "64",
            "--latency-repeats",
            "2",
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-name",
            "p",
        ]
    )
    folder = tmp_path / "runs" / "p"
    assert {"pruned.safetensors", "pruning.json", "pruning.md", "finetune_metrics.jsonl"} <= {
        p.name for p in folder.iterdir()
    }
    assert summary["pruning"]["mac_reduction"] >= 1.5 and summary["finetune"]["epochs"] == 1
    table = (folder / "pruning.md").read_text()
    for row in ("test accuracy", "parameters", "MACs (batch 1)", "latency batch 1, median (ms)"):
        assert row in table
    assert "before / after" in capsys.readouterr().out
    model, pruned_card = load_model(folder / "pruned.safetensors")
    assert pruned_card.extra[HISTORY_KEY] and pruned_card.class_names == DIGITS
    assert count_macs_params(model, example_input_for(pruned_card))[0] == summary["after"]["macs"]
    assert _sha(ckpt) == digest  # the original checkpoint is only read


def test_prune_tool_bad_input_is_one_line(tmp_path, capsys):
    tool = _tool("prune")
    ckpt, _ = _checkpoint(tmp_path / "model.safetensors")
    digest = _sha(ckpt)
    base = [str(ckpt), "--dataset", "digits", "--output-dir", str(tmp_path / "runs")]
    assert "--ratio 1.5 is outside (0, 1)" in _user_error(capsys, tool.main, [*base, "--ratio", "1.5"])
    assert "exactly one of" in _user_error(capsys, tool.main, [*base, "--ratio", "0.5", "--speedup", "2"])
    assert "would remove every channel" in _user_error(
        capsys, tool.main, [*base, "--ratio", "0.95", "--finetune-epochs", "0"]
    )
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    assert "no ignite_cv metadata" in _user_error(capsys, tool.main, [str(bare), *base[1:], "--ratio", "0.5"])
    other, _ = _checkpoint(tmp_path / "other.safetensors", classes=["cat", "dog", "owl"])
    message = _user_error(capsys, tool.main, [str(other), *base[1:], "--ratio", "0.5"])
    assert "pass the data set the model was trained on" in message
    assert _sha(ckpt) == digest
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_tools_folder_does_not_shadow_the_standard_library_profile():
    # Scripts in tools/ have that folder on sys.path; torch imports cProfile, which imports ``profile``.
    done = subprocess.run(
        [sys.executable, "-c", "import cProfile, profile; print(profile.Profile.__module__)"],
        cwd=REPO / "tools",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "profile"
