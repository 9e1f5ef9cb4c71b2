"""end_process: the exit status, threads, atexit handlers and buffered output of a normal exit, without
the interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: A script that leaves work for the exit: a non-daemon thread that writes late, an idle thread pool,
#: an atexit handler, buffered stdout; a finalizer (``__del__`` of a module global) marks a full teardown.
SCRIPT = textwrap.dedent(
    """
    import atexit, concurrent.futures, sys, threading, time
    from pathlib import Path
    from ignite_cv.utils.process_exit import end_process

    out = Path(sys.argv[1])

    def late():
        time.sleep(0.3)
        (out / "thread.txt").write_text("done")

    threading.Thread(target=late).start()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()  # its worker thread now waits for more work
    atexit.register(lambda: (out / "atexit.txt").write_text(str((out / "thread.txt").exists())))

    class Finalized:
        def __del__(self):
            (out / "finalized.txt").write_text("yes")

    FINALIZED = Finalized()
    sys.stdout.write("buffered line")  # no newline, no flush
    end_process(int(sys.argv[2]))
    """
)


def _run(tmp_path: Path, code: int, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_threads_then_atexit_then_output_then_the_status(tmp_path):
    proc = _run(tmp_path, 3)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered line"
    assert (tmp_path / "thread.txt").read_text() == "done"  # the non-daemon thread was waited for
    assert (tmp_path / "atexit.txt").read_text() == "True"  # atexit ran after the thread had finished
    assert not (tmp_path / "finalized.txt").exists()  # no teardown of module globals


def test_status_zero(tmp_path):
    proc = _run(tmp_path, 0)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "buffered line"


def test_full_exit_variable_keeps_the_interpreters_teardown(tmp_path):
    proc = _run(tmp_path, 3, {"IGNITE_CV_FULL_EXIT": "1"})
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered line"
    assert (tmp_path / "atexit.txt").read_text() == "True"
    assert (tmp_path / "finalized.txt").read_text() == "yes"
