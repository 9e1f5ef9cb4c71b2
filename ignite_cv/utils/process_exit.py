"""End a finished command without the interpreter's teardown of every loaded module.

After ``import torch, torchvision`` a Python process takes 0.6-1.0 s to exit on our 2-core machine
(``python -c "import torch, torchvision"``: 3.50 s wall; with ``os._exit(0)`` at the end: 2.84 s), and
a training run, which loads about 2,300 modules and holds its data and model, up to 1 s: CPython
finalizes every module, frees every object and unloads the native libraries one by one. Nothing of a
command's result depends on that teardown, so a command that has finished its work does what the
interpreter does first — waits for non-daemon threads, runs the ``atexit`` handlers (logging,
multiprocessing's children, writers that flush at exit), flushes stdout and stderr — and then ends
the process with ``os._exit``. Every file ignite_cv writes is closed (and atomic) before this point.

``IGNITE_CV_FULL_EXIT=1`` keeps the normal exit (for a profiler or coverage tool that writes its
results at finalization). Recipes and tools call :func:`end_process` at the end of their
``__main__`` block only, never the library: a caller that imports ``run_recipe`` or a tool's ``main``
keeps its process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

#: Environment variable that keeps the interpreter's normal (slow) exit.
FULL_EXIT_VARIABLE = "IGNITE_CV_FULL_EXIT"


def end_process(code: int = 0) -> NoReturn:
    """Exit with ``code`` after the threads, ``atexit`` handlers and stdio flushes a normal exit does,
    skipping the teardown of modules and objects (see the module docstring)."""
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if os.environ.get(FULL_EXIT_VARIABLE) == "1" or shutdown_threads is None or run_exit_handlers is None:
        raise SystemExit(code)
    shutdown_threads()  # as CPython's finalization: pre-shutdown hooks (thread pools), join threads
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, detached, broken pipe
            stream.flush()
    os._exit(code)
