"""A run's whole life on digits: finished once, finished after a kill, one process per folder, a damaged
best checkpoint, ties, a full disk, SIGTERM, --weights of another class count (issue 19)."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ignite_cv.training.loop import PhaseHook
from ignite_cv.training_state import list_states, read_state
from ignite_cv.utils.file_lock import is_locked
from ignite_cv.utils.modules import unwrap
from tests.recipe_utils import REPO, load_recipe

TINYVGG = REPO / "recipes" / "tinyvgg.py"
FAST = ["--hidden-units", "4", "--workers", "0", "--image-grid-every", "0", "--deterministic"]
recipe = load_recipe("tinyvgg")


def _train(argv):
    return recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)


def _snapshot(folder):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    summary = _train(
        [*FAST, "--epochs", "2", "--batch-size", "128", "--output-dir", str(out), "--run-name", "done"]
    )
    return out / "done", summary


def test_a_finished_run_resumed_says_so_and_changes_no_file(finished, capsys):
    run_dir, summary = finished
    before = _snapshot(run_dir)
    assert _train(["--resume", str(run_dir)]) == json.loads((run_dir / "summary.json").read_text())
    assert "already finished" in capsys.readouterr().out
    assert _snapshot(run_dir) == before


def _killed_after_training(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "summary.json").unlink()
    shutil.rmtree(run_dir / "report")
    return run_dir


def test_a_run_killed_after_its_last_state_is_finished_on_resume(finished, tmp_path, capsys):
    run_dir = _killed_after_training(finished, tmp_path)
    rows = (run_dir / "metrics.jsonl").read_text()
    summary = _train(["--resume", str(run_dir)])
    assert "finishing it: test evaluation, report, summary" in capsys.readouterr().out
    assert summary["test"] == finished[1]["test"] and summary["best"] == finished[1]["best"]
    assert (run_dir / "report" / "confusion_matrix.csv").is_file()
    assert (run_dir / "metrics.jsonl").read_text() == rows  # no epoch trained again


def test_a_damaged_best_checkpoint_falls_back_to_the_states_weights_and_is_rewritten(
    finished, tmp_path, capsys
):
    run_dir = _killed_after_training(finished, tmp_path)
    best = run_dir / "checkpoints" / finished[1]["best_checkpoint"].rsplit("/", 1)[-1]
    original = {k: v.clone() for k, v in load_file(best).items()}  # load_file maps the file: copy it
    data = bytearray(best.read_bytes())
    data[-7] ^= 0x20
    best.write_bytes(bytes(data))
    summary = _train(["--resume", str(run_dir)])
    out = capsys.readouterr().out
    assert f"warning: {best} fails its checksum" in out and f"rewrote {best}" in out
    assert summary["test"] == finished[1]["test"]
    repaired = load_file(best)
    assert repaired.keys() == original.keys()
    assert [k for k in original if not torch.equal(repaired[k], original[k])] == []


def _separable_npz(path, n=48):
    """Two classes anyone can tell apart (dark and bright): validation ROC-AUC is 1.0 every epoch."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = (rng.integers(0, 60, (n, 8, 8)) + 190 * labels[:, None, None]).astype(np.uint8)
    np.savez(path, train_images=images, train_labels=labels)
    return path


class _Parts(PhaseHook):
    def attach(self, parts, run):
        self.parts = parts
        return []


def test_on_tied_scores_the_summary_the_tested_file_and_the_restored_weights_are_one_epoch(tmp_path):
    from ignite_cv.training.fit import fit

    data = _separable_npz(tmp_path / "two.npz")
    config = recipe.TinyVGGRecipe(
        dataset="npz", data_root=str(data), epochs=4, hidden_units=4, workers=0, image_grid_every=0,
        batch_size=16, scheduler="none", lr=3e-3, output_dir=str(tmp_path), run_name="tie", keep_best=4,
    )  # fmt: skip
    hook = _Parts()
    summary = fit(config, hooks=[hook])
    rows = [json.loads(line) for line in (tmp_path / "tie" / "metrics.jsonl").read_text().splitlines()]
    aucs = [r["val/roc_auc"] for r in rows]
    assert aucs.count(max(aucs)) >= 2 and aucs[-1] == max(aucs), aucs  # the tie this test is about
    first = aucs.index(max(aucs)) + 1
    assert summary["best"]["epoch"] == first
    assert summary["best_checkpoint"].endswith(f"best_epoch={first}_roc_auc={max(aucs):.4f}.safetensors")
    tested = load_file(summary["best_checkpoint"])
    restored = unwrap(hook.parts.model).state_dict()
    assert all(torch.equal(restored[k], tested[k]) for k in tested)
    last = load_file(next((tmp_path / "tie" / "checkpoints").glob("last_epoch=4.safetensors")))
    assert not all(torch.equal(last[k], tested[k]) for k in tested)  # the tied epochs' weights differ


def test_a_ten_class_checkpoint_starts_a_two_class_run(finished, tmp_path, capsys):
    data = _separable_npz(tmp_path / "two.npz")
    summary = _train(
        [*FAST, "--epochs", "1", "--dataset", "npz", "--data-root", str(data), "--output-dir", str(tmp_path),
         "--batch-size", "16", "--weights", finished[1]["best_checkpoint"]]
    )  # fmt: skip
    assert "head replaced (2 head tensors of the file dropped)" in capsys.readouterr().out
    assert summary["data"]["train"] + summary["data"]["val"] + summary["data"]["test"] == 48


def test_a_second_process_on_a_run_folder_gets_one_line_naming_the_first(tmp_path, capsys):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(TINYVGG),
            *FAST,
            "--epochs",
            "50",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "a",
        ],
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not list_states(tmp_path / "a" / "checkpoints" / "state") and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(SystemExit) as exit_info:
            _train(["--resume", str(tmp_path / "a")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"error: run folder {tmp_path / 'a'} is in use by process {proc.pid}; "
            "wait for it to end (or stop it) and resume again, or start a new run"
        ]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    finally:
        proc.kill()
    assert not is_locked(tmp_path / "a" / ".lock")


def test_sigterm_stops_with_one_line_a_resumable_state_and_exit_143(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(TINYVGG),
            *FAST,
            "--epochs",
            "50",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "t",
        ],
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    states = tmp_path / "t" / "checkpoints" / "state"
    deadline = time.monotonic() + 300
    while not list_states(states) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert err.strip().splitlines() == [f"terminated (SIGTERM); resume with --resume {tmp_path / 't'}"]
    assert all(read_state(p).meta["trainer"]["iteration"] > 0 for p in list_states(states))


def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_space(tmp_path, monkeypatch, capsys):
    import ignite_cv.training_state as training_state

    real, calls = training_state.write_safetensors_atomic, {"n": 0}

    def fill_up(target, tensors, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real(target, tensors, metadata)

    monkeypatch.setattr(training_state, "write_safetensors_atomic", fill_up)
    args = [*FAST, "--epochs", "4", "--output-dir", str(tmp_path), "--run-name", "full"]
    with pytest.raises(SystemExit) as exit_info:
        _train(args)
    assert exit_info.value.code == 2
    run_dir = tmp_path / "full"
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot write {run_dir / 'checkpoints' / 'state'}/state_iter=")
    assert line.endswith(f"No space left on device; free space (or make the folder writable), then continue "
                         f"the run with --resume {run_dir}")  # fmt: skip
    assert [read_state(p).meta["run"]["epoch"] for p in list_states(run_dir / "checkpoints" / "state")] == [
        2,
        1,
    ]
    monkeypatch.setattr(training_state, "write_safetensors_atomic", real)
    assert _train(["--resume", str(run_dir)])["epochs_run"] == 4


def test_a_loss_that_diverges_before_any_checkpoint_says_so_and_leaves_no_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(
            ["--lr", "1000", "--scheduler", "none", "--optimizer", "sgd", "--batch-norm", "no", "--log-every",
             "1", "--epochs", "2", "--workers", "0", "--output-dir", str(tmp_path)]
        )  # fmt: skip
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "NaN/inf at epoch 1" in line and line.endswith("no checkpoint was saved before it")
    assert [p.name for p in tmp_path.iterdir()] in ([], [".stats-cache"])
