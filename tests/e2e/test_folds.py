"""Cross-validation studies end to end: a killed study resumes to the same summary; 2 processes ≈ 1.

Data: the digits 3 and 8 (357 images, 8×8) as an .npz, two classes so each report is cheap; 72 are
held out as the test split, 285 are pooled into 2 folds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ignite_cv.training_state import list_states
from tests.data.data_helpers import binary_digits_npz
from tests.e2e.test_distributed import _torchrun
from tests.recipe_utils import REPO, run_script

TINYVGG = REPO / "recipes" / "tinyvgg.py"


@pytest.fixture(scope="module")
def binary_digits(tmp_path_factory) -> Path:
    return binary_digits_npz(tmp_path_factory.mktemp("data") / "digits38.npz")


def _args(data: Path) -> list[str]:
    # No BatchNorm and no dropout: two processes with half batches then compute one process's gradient.
    return [
        *(
            "--dataset",
            "npz",
            "--data-root",
            str(data),
            "--folds",
            "2",
            "--epochs",
            "3",
            "--batch-size",
            "16",
        ),
        *("--hidden-units", "4", "--batch-norm", "no", "--dropout", "0", "--workers", "0", "--seed", "3"),
        *("--image-grid-every", "0", "--deterministic", "--checkpoint-every", "2"),
    ]


def _summary(study: Path) -> dict:
    return json.loads((study / "cv_summary.json").read_text())


def _kill_in_fold_one(args: list[str], study: Path, cwd: Path, env: dict) -> str:
    """Start a study and SIGKILL it once fold 1 has a training state past iteration 4."""
    proc = subprocess.Popen(
        [sys.executable, str(TINYVGG), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    states = study / "fold-1" / "checkpoints" / "state"
    deadline = time.monotonic() + 400
    while proc.poll() is None and time.monotonic() < deadline:
        iterations = [int(re.search(r"(\d+)", p.name).group(1)) for p in list_states(states)]
        if max(iterations, default=0) >= 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return out.decode()


@pytest.fixture(scope="module")
def uninterrupted(binary_digits, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full")
    result = run_script(
        [str(TINYVGG), *_args(binary_digits), "--output-dir", str(out), "--run-name", "full"], cwd=out
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "full"


def test_a_killed_study_resumes_to_the_same_summary(binary_digits, uninterrupted, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    study = tmp_path / "cut"
    _kill_in_fold_one(
        [*_args(binary_digits), "--output-dir", str(tmp_path), "--run-name", "cut"], study, tmp_path, env
    )
    assert (study / "fold-0" / "cv_fold.json").is_file() and not (study / "fold-1" / "summary.json").exists()
    kept = (study / "fold-0" / "cv_fold.json").read_bytes()
    resumed = run_script([str(TINYVGG), "--resume", str(study)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming fold-1" in resumed.stdout and "fold 1/2:" not in resumed.stdout  # fold 0 kept
    assert re.search(r"from state_iter=\d+", resumed.stdout)
    assert (study / "fold-0" / "cv_fold.json").read_bytes() == kept
    assert _summary(study) == _summary(uninterrupted)
    assert (study / "cv_summary.csv").read_text() == (uninterrupted / "cv_summary.csv").read_text()


def test_two_processes_match_one_and_write_one_study(binary_digits, uninterrupted, tmp_path):
    result = _torchrun(
        [str(TINYVGG), *_args(binary_digits), "--output-dir", str(tmp_path / "ddp")], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    studies = [p for p in (tmp_path / "ddp").iterdir() if not p.name.startswith(".")]
    assert len(studies) == 1 and result.stdout.count("study folder:") == 2  # the first line and the last
    ddp, single = _summary(studies[0]), _summary(uninterrupted)
    assert [f["val_samples"] for f in ddp["per_fold"]] == [f["val_samples"] for f in single["per_fold"]]
    # The distributed tests' tolerance: accuracy within 2 points, loss within 10 %.
    for a, b in zip(ddp["per_fold"], single["per_fold"]):
        for split in ("val", "test"):
            assert abs(a[split]["accuracy"] - b[split]["accuracy"]) <= 0.02
            assert a[split]["loss"] == pytest.approx(b[split]["loss"], rel=0.10)
    for part in ("out_of_fold", "ensemble_test"):
        assert abs(ddp[part]["metrics"]["accuracy"] - single[part]["metrics"]["accuracy"]) <= 0.02
        assert sum(map(sum, ddp[part]["confusion_matrix"])) == sum(map(sum, single[part]["confusion_matrix"]))
