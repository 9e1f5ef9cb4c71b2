"""Reliability: killed runs resume bitwise, damaged states are skipped, foreign files refused, NaN stops."""

from __future__ import annotations

import json
import pickle
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ignite_cv.training_state import list_states, read_state
from tests.recipe_utils import REPO, load_recipe, run_script

TINYVGG = REPO / "recipes" / "tinyvgg.py"
EPOCHS, BATCH = 5, 64  # digits: 1295 training images → 21 iterations per epoch
RUN_ARGS = [
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    str(BATCH),
    "--deterministic",
    "--checkpoint-every",
    "3",
    "--hidden-units",
    "8",
    "--workers",
    "0",
]


def _state_iterations(run_dir):
    return [int(re.search(r"(\d+)", p.name).group(1)) for p in list_states(run_dir / "checkpoints" / "state")]


def _run_and_kill(args, run_dir, cwd, kill_after_iteration, env):
    """Start a run and SIGKILL it once a training state past ``kill_after_iteration`` exists."""
    proc = subprocess.Popen(
        [sys.executable, str(TINYVGG), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if max(_state_iterations(run_dir), default=0) >= kill_after_iteration:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def _weights(run_dir):
    return load_file(next((run_dir / "checkpoints").glob("last_epoch=*.safetensors")))


def test_killed_three_times_and_resumed_ends_bitwise_equal(tmp_path):
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    full = run_script(
        [str(TINYVGG), *RUN_ARGS, "--output-dir", str(tmp_path), "--run-name", "full"], cwd=tmp_path
    )
    assert full.returncode == 0, full.stderr

    cut = tmp_path / "cut"
    rng = random.Random(7)
    kill_points = sorted(rng.sample(range(4, EPOCHS * 21 - 10), 3))
    code, _, err = _run_and_kill(
        [*RUN_ARGS, "--output-dir", str(tmp_path), "--run-name", "cut"], cut, tmp_path, kill_points[0], env
    )
    assert code == -signal.SIGKILL, err
    resumed_from = []
    for point in kill_points[1:]:
        code, out, err = _run_and_kill(["--resume", str(cut)], cut, tmp_path, point, env)
        assert code == -signal.SIGKILL, err
        resumed_from += re.findall(r"from state_iter=(\d+)", out)
    final = run_script([str(TINYVGG), "--resume", str(cut)], cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    resumed_from += re.findall(r"from state_iter=(\d+)", final.stdout)
    assert len(resumed_from) == 3
    assert any(int(it) % 21 for it in resumed_from), f"no mid-epoch resume in {resumed_from}"

    a, b = _weights(tmp_path / "full"), _weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    cut_summary = json.loads((cut / "summary.json").read_text())
    assert cut_summary["test"] == full_summary["test"]


def test_truncated_newest_state_is_never_the_resume_point(tmp_path, capsys):
    recipe = load_recipe("tinyvgg")
    recipe.run_recipe(
        recipe.TinyVGGRecipe,
        argv=[
            *RUN_ARGS,
            "--epochs",
            "2",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "r",
            "--keep-states",
            "3",
        ],
    )
    states = list_states(tmp_path / "r" / "checkpoints" / "state")
    newest, previous = states[0], states[1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    (tmp_path / "r" / "summary.json").unlink()  # as if killed before the test step (else: finished)
    capsys.readouterr()
    recipe.run_recipe(recipe.TinyVGGRecipe, argv=["--resume", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert f"warning: skipping {newest.name}" in out
    assert f"from {previous.name}" in out


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_as_weights_or_resume_input_is_refused_unopened(tmp_path, capsys):
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Marker(str(marker)))
    recipe = load_recipe("resnet_finetune")
    for name in ("evil.pth", "evil.safetensors", "evil.bin"):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(SystemExit) as exit_info:
            recipe.run_recipe(
                recipe.ResNetFinetuneRecipe,
                argv=[
                    "--weights",
                    str(tmp_path / name),
                    "--epochs",
                    "2",
                    "--warmup-epochs",
                    "1",
                    "--image-size",
                    "32",
                    "--output-dir",
                    str(tmp_path / "runs"),
                    "--workers",
                    "0",
                ],
            )
        assert exit_info.value.code == 2
    # as --resume input: a run folder whose training state is a pickle in disguise
    tiny = load_recipe("tinyvgg")
    tiny.run_recipe(
        tiny.TinyVGGRecipe,
        argv=[
            *RUN_ARGS,
            "--epochs",
            "1",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "victim",
            "--keep-states",
            "1",
        ],
    )
    (state,) = list_states(tmp_path / "victim" / "checkpoints" / "state")
    state.write_bytes(payload)
    (tmp_path / "victim" / "summary.json").unlink()  # unfinished, so --resume reads the state
    with pytest.raises(SystemExit) as exit_info:
        tiny.run_recipe(tiny.TinyVGGRecipe, argv=["--resume", str(tmp_path / "victim")])
    assert exit_info.value.code == 2
    (tmp_path / "evil_run").mkdir()
    with pytest.raises(SystemExit):
        tiny.run_recipe(tiny.TinyVGGRecipe, argv=["--resume", str(tmp_path / "evil.pth")])
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_nan_loss_stops_with_epoch_and_iteration_and_keeps_the_last_good_state(tmp_path, capsys):
    recipe = load_recipe("tinyvgg")
    with pytest.raises(SystemExit) as exit_info:
        recipe.run_recipe(
            recipe.TinyVGGRecipe,
            argv=[
                "--lr",
                "1000",
                "--scheduler",
                "none",
                "--optimizer",
                "sgd",
                "--epochs",
                "3",
                "--output-dir",
                str(tmp_path),
                "--run-name",
                "nan",
                "--workers",
                "0",
                "--log-every",
                "1",
                "--batch-norm",
                "no",
                "--checkpoint-every",
                "1",
            ],
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    match = re.search(r"NaN/inf at epoch (\d+), iteration (\d+)", err)
    assert match and "--lr" in err
    states = list_states(tmp_path / "nan" / "checkpoints" / "state")
    assert states, "no good state was kept"
    last_good = read_state(states[0])
    assert last_good.meta["trainer"]["iteration"] < int(match.group(2))
    weights = {k: v for k, v in last_good.tensors.items() if k.startswith("model.")}
    assert weights and all(torch.isfinite(v).all() for v in weights.values())


PLATEAU_ARGS = [
    *RUN_ARGS[2:],  # RUN_ARGS without its --epochs
    "--epochs",
    "3",
    "--scheduler",
    "plateau",
    # "max" on the loss: every epoch whose validation loss falls counts as no improvement, so with
    # patience 0 the LR decays after most epochs and the resumed scheduler's counters decide the LR.
    "--plateau-mode",
    "max",
    "--plateau-patience",
    "0",
    "--plateau-factor",
    "0.5",
]


def test_a_plateau_run_saves_is_killed_and_resumes_bitwise(tmp_path):
    """Bug 1 of issue 13: --scheduler plateau crashed at the end of epoch 1 of any run saving a state."""
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    full = run_script(
        [str(TINYVGG), *PLATEAU_ARGS, "--output-dir", str(tmp_path), "--run-name", "full"],
        cwd=tmp_path,
        timeout=900,
    )
    assert full.returncode == 0, full.stderr[-3000:]
    cut = tmp_path / "cut"
    code, _, err = _run_and_kill(
        [*PLATEAU_ARGS, "--output-dir", str(tmp_path), "--run-name", "cut"], cut, tmp_path, 21 + 9, env
    )
    assert code == -signal.SIGKILL, err
    resumed = run_script([str(TINYVGG), "--resume", str(cut)], cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"from state_iter=(\d+)", resumed.stdout)
    a, b = _weights(tmp_path / "full"), _weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lrs = [
        [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        for run in (tmp_path / "full", cut)
    ]
    assert lrs[0] == lrs[1]
    assert lrs[0][2] < lrs[0][1] < lrs[0][0]  # the LR did drop on plateau, before and after the kill
