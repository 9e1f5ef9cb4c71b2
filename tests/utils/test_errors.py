import errno
import os
import signal
import subprocess
import sys
import time

from ignite_cv.utils.errors import UserError, write_failure
from tests.recipe_utils import REPO

SLEEPER = """
import time
from ignite_cv.utils.errors import exit_on_user_error

@exit_on_user_error
def main():
    print("ready", flush=True)
    try:
        time.sleep(600)
    except KeyboardInterrupt as err:
        err.hint = "resume with --resume RUN"
        raise

main()
"""


def test_sigterm_stops_like_ctrl_c_with_one_line_and_exit_143():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines() == ["terminated (SIGTERM); resume with --resume RUN"]


def test_a_failed_write_the_user_can_fix_becomes_one_line_naming_the_file():
    failure = write_failure(OSError(errno.ENOSPC, "No space left on device", "/runs/r/x"), "free space")
    assert isinstance(failure, UserError)
    assert str(failure) == "cannot write /runs/r/x: No space left on device; free space"
    assert write_failure(OSError(errno.EIO, "I/O error", "/x"), "fix") is None  # a real fault stays one
