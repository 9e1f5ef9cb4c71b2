"""A run folder's life: locked by one process, resumed with its own config, finished once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from ignite_cv.config import parse_config
from ignite_cv.training.lifecycle import claim_run, resumed_config
from ignite_cv.training_state import TrainingState, save_state
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.file_lock import is_locked
from tests.recipe_utils import REPO, load_recipe

Recipe = load_recipe("tinyvgg").TinyVGGRecipe


def _run_folder(tmp_path, name="tinyvgg-1", state=True, finished=False, **values):
    run_dir = tmp_path / name
    (run_dir / "checkpoints" / "state").mkdir(parents=True)
    config = Recipe(output_dir=str(tmp_path), **values)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    if state:
        meta = {"config": config.to_dict()}
        save_state(run_dir / "checkpoints" / "state", 21, TrainingState({"x": torch.zeros(1)}, meta), keep=1)
    if finished:
        (run_dir / "summary.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    return run_dir


def _snapshot(folder):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_resume_takes_the_runs_config_and_refuses_other_settings_naming_each(tmp_path):
    run_dir = _run_folder(tmp_path, epochs=5, batch_size=64)
    config, changed = resumed_config(parse_config(Recipe, ["--resume", str(run_dir)]), run_dir)
    assert (config.epochs, config.batch_size, config.resume, changed) == (5, 64, str(run_dir), {})
    asked = parse_config(Recipe, ["--resume", str(run_dir), "--batch-size", "32", "--lr", "0.1"])
    with pytest.raises(UserError) as caught:
        resumed_config(asked, run_dir)
    message = str(caught.value)
    assert "--batch-size 32 (the run has 64)" in message and "--lr 0.1 (the run has 0.004)" in message
    assert "--epochs" in message.split("on resume only")[1]  # says what may change


def test_where_a_run_computes_may_change_and_epochs_extend_a_schedule_that_allows_it(tmp_path):
    run_dir = _run_folder(tmp_path, epochs=5, scheduler="none")
    asked = parse_config(Recipe, ["--resume", str(run_dir), "--epochs", "8", "--workers", "0"])
    config, changed = resumed_config(asked, run_dir)
    assert (config.epochs, config.workers, changed) == (8, 0, {"epochs": 8, "workers": 0})
    with pytest.raises(UserError, match="fewer than its 5 epochs"):
        resumed_config(parse_config(Recipe, ["--resume", str(run_dir), "--epochs", "3"]), run_dir)
    onecycle = _run_folder(tmp_path, name="tinyvgg-2", epochs=5, scheduler="onecycle")
    with pytest.raises(UserError, match="onecycle schedule is planned over its 5 epochs"):
        resumed_config(parse_config(Recipe, ["--resume", str(onecycle), "--epochs", "8"]), onecycle)


def test_a_config_json_edited_since_the_state_was_saved_is_refused(tmp_path):
    run_dir = _run_folder(tmp_path, batch_size=64)
    edited = json.loads((run_dir / "config.json").read_text())
    edited["batch_size"] = 32
    (run_dir / "config.json").write_text(json.dumps(edited))
    with pytest.raises(UserError, match="edited since .*batch_size is 32 in config.json but 64 in the state"):
        resumed_config(parse_config(Recipe, ["--resume", str(run_dir)]), run_dir)


def test_a_new_run_holds_its_folder_locked_and_leaves_none_behind_on_a_bad_input(tmp_path):
    config = Recipe(output_dir=str(tmp_path), run_name="r")
    with claim_run(config, say=lambda _: None) as claim:
        assert claim.new and claim.path == tmp_path / "r"
        assert is_locked(claim.path / ".lock")
        assert json.loads((claim.path / "config.json").read_text())["run_name"] == "r"
    assert not is_locked(tmp_path / "r" / ".lock")
    with pytest.raises(UserError), claim_run(Recipe(output_dir=str(tmp_path), run_name="bad"), say=print):
        raise UserError("a bad data root")
    assert not (tmp_path / "bad").exists()


def test_a_finished_run_resumed_changes_nothing(tmp_path):
    run_dir = _run_folder(tmp_path, finished=True)
    before = _snapshot(run_dir)
    said = []
    with claim_run(parse_config(Recipe, ["--resume", str(run_dir)]), said.append) as claim:
        assert claim.finished == {"test": {"accuracy": 0.5}}
    assert "already finished" in said[0] and _snapshot(run_dir) == before
    extend = parse_config(Recipe, ["--resume", str(run_dir), "--epochs", "20"])
    with (
        pytest.raises(UserError, match="is finished .* cannot be extended to --epochs 20"),
        claim_run(extend),
    ):
        pass


HOLD = """
import sys, time
from ignite_cv.utils.file_lock import FileLock
FileLock.acquire(sys.argv[1]).write_pid()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder():
    procs = []

    def hold(run_dir):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(run_dir / ".lock")], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout.readline().strip() == "locked"
        procs.append(proc)
        return proc

    yield hold
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_second_process_gets_one_line_naming_the_holder_and_auto_skips_busy_or_finished(tmp_path, holder):
    older = _run_folder(tmp_path, name="tinyvgg-1")
    busy = _run_folder(tmp_path, name="tinyvgg-2")
    done = _run_folder(tmp_path, name="tinyvgg-3", finished=True)
    os.utime(older, (1, 1))  # the oldest
    proc = holder(busy)
    second = parse_config(Recipe, ["--resume", str(busy)])
    with (
        pytest.raises(UserError, match=f"run folder {busy} is in use by process {proc.pid}"),
        claim_run(second),
    ):
        pass
    auto = parse_config(Recipe, ["--resume", "auto", "--output-dir", str(tmp_path)])
    with claim_run(auto, print) as claim:
        assert claim.path == older and claim.finished is None
    holder(older)
    with (
        pytest.raises(UserError, match=r"no resumable tinyvgg run .*tinyvgg-\d is (in use|finished)"),
        claim_run(auto),
    ):
        pass
    assert done.exists()


def test_a_resume_removes_temporary_files_an_interrupted_write_left(tmp_path):
    run_dir = _run_folder(tmp_path)
    leftover = run_dir / "checkpoints" / ".last_epoch=1.safetensors.a1b2c3d4.tmp"
    leftover.write_bytes(b"half")
    said = []
    with claim_run(parse_config(Recipe, ["--resume", str(run_dir)]), said.append):
        assert not leftover.exists()
    assert said == ["removed 1 temporary files left by an interrupted write"]


def test_a_read_only_or_full_output_folder_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    import errno
    import pathlib

    import ignite_cv.run_folder as run_folder

    def read_only(target, data, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(target))

    monkeypatch.setattr(run_folder, "write_json_atomic", read_only)
    read_only_run = Recipe(output_dir=str(tmp_path), run_name="ro")
    with (
        pytest.raises(UserError, match="cannot write .*config.json: Read-only file system"),
        claim_run(read_only_run),
    ):
        pass
    assert not (tmp_path / "ro").exists()
    real_mkdir = pathlib.Path.mkdir

    def no_permission(self, *args, **kwargs):
        if self.parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", no_permission)
    with (
        pytest.raises(
            UserError, match=f"cannot create a run folder in --output-dir {tmp_path} .Permission denied"
        ),
        claim_run(Recipe(output_dir=str(tmp_path), run_name="denied"), print),
    ):
        pass
    assert list(tmp_path.iterdir()) == []
