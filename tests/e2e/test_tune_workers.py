"""Two tools/tune.py workers on one SQLite study: the target count is met, no trial lost or run twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from tests.recipe_utils import REPO

TRIALS = 4


def test_two_workers_share_one_study(tmp_path):
    argv = [sys.executable, str(REPO / "tools" / "tune.py"), "tinyvgg", "--trials", str(TRIALS)]
    argv += ["--space", "lr=log(1e-3,1e-2)", "batch_size=choice(64,128)", "--study-name", "shared"]
    argv += ["--epochs", "1", "--hidden-units", "4", "--workers", "0", "--image-grid-every", "0"]
    argv += ["--heartbeat", "2", "--threads", "1", "--output-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    logs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], logs
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'shared' / 'study.db'}")
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == TRIALS
    others = [t for t in study.trials if t.state not in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert all(t.state == TrialState.FAIL and "withdrawn" in t.user_attrs for t in others)
    started = [re.findall(r"^trial (\d+): lr=", log, flags=re.MULTILINE) for log in logs]
    numbers = sorted(int(n) for found in started for n in found)
    assert numbers == sorted(t.number for t in finished)  # each trial started by exactly one worker
    run_dirs = {t.user_attrs["run_dir"] for t in finished}
    assert len(run_dirs) == TRIALS and all(
        (tmp_path / "shared" / os.path.basename(d)).is_dir() for d in run_dirs
    )
