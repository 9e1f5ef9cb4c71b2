import os
import signal
import subprocess
import sys
import time

import pytest

from ignite_cv.utils.file_lock import FileLock, LockHeld, is_locked, read_pid
from tests.recipe_utils import REPO

HOLD = """
import sys, time
from ignite_cv.utils.file_lock import FileLock
lock = FileLock.acquire(sys.argv[1]); lock.write_pid()
print("locked", flush=True)
time.sleep(600)
"""


def _holder(path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid_and_the_lock_dies_with_it(tmp_path):
    path = tmp_path / ".lock"
    holder = _holder(path)
    try:
        assert is_locked(path) is True
        with pytest.raises(LockHeld) as held:
            FileLock.acquire(path)
        assert held.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.05)
    assert is_locked(path) is False  # SIGKILL released it: no stale lock
    with FileLock.acquire(path) as lock:
        lock.write_pid()
        assert read_pid(path) == os.getpid()


def test_looking_at_a_lock_changes_no_file(tmp_path):
    path = tmp_path / ".lock"
    path.write_text("123\n")
    before = path.stat().st_mtime_ns
    assert is_locked(path) is False
    FileLock.acquire(path).release()
    assert path.read_text() == "123\n" and path.stat().st_mtime_ns == before
    assert is_locked(tmp_path / "absent") is False and not (tmp_path / "absent").exists()
