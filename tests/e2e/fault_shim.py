"""Run a script with one function wrapped to SIGKILL the process at its N-th call (tests only).

    python -m tests.e2e.fault_shim --kill MODULE:NAME --nth N --when before|after -- SCRIPT ARGS...
    python -m tests.e2e.fault_shim --count COUNTS.json -- SCRIPT ARGS...

``MODULE:NAME`` is a function (``ignite_cv.training_state:write_state``) or a method
(``ignite_cv.handlers.nonfinite:TerminateOnNonFiniteLoss._record``). A function is replaced in every
loaded module that holds it, so ``from x import f`` callers see the wrapper too. ``--count`` wraps
every target of :data:`TARGETS` without killing and writes how often each was called, at exit: a
reference run tells the fault-injection test where kills can land. The kill is the process's own
``SIGKILL``: nothing is flushed, closed or cleaned up, as when the machine's OOM killer or a
scheduler ends a job; the background writer may be half-way through a file.

Nothing here is imported by the library; it runs the script with ``runpy`` as ``__main__``.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib
import json
import os
import runpy
import signal
import sys
import threading
from pathlib import Path

#: Where a run can be killed, in lifecycle order: (target, what it marks).
TARGETS = {
    "ignite_cv.handlers.nonfinite:TerminateOnNonFiniteLoss._record": "a training iteration",
    "ignite_cv.handlers.history:_append_line": "a metrics.jsonl row",
    "ignite_cv.weights:save_weights": "a checkpoint file",
    "ignite_cv.training_state:write_state": "a training state",
    "ignite_cv.evaluation:run_evaluation": "an evaluation after training (test or pruning)",
    "ignite_cv.figures:save_figure": "a report figure",
    "ignite_cv.report:write_test_report": "the test report",
    "ignite_cv.prune.workflow:_finetune": "the pruned model's fine-tune",
    "ignite_cv.prune.core:save_pruned": "the pruned model's file",
    "ignite_cv.training.run_output:RunOutput.finish": "the summary",
}


def _resolve(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    owner_name, _, method = attribute.rpartition(".")
    owner = getattr(module, owner_name) if owner_name else module
    return module, owner, method or attribute


def wrap(target: str, on_call) -> None:
    """Replace ``target`` with a wrapper calling ``on_call(count, phase)`` before and after each call."""
    module, owner, name = _resolve(target)
    original = getattr(owner, name)
    lock = threading.Lock()
    calls = {"n": 0}

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        with lock:
            calls["n"] += 1
            count = calls["n"]
        on_call(count, "before")
        result = original(*args, **kwargs)
        on_call(count, "after")
        return result

    setattr(owner, name, wrapper)
    if owner is module:  # also the names ``from module import name`` bound elsewhere
        for other in list(sys.modules.values()):
            namespace = getattr(other, "__dict__", None)
            if namespace is None:
                continue
            for key, value in list(namespace.items()):
                if value is original:
                    setattr(other, key, wrapper)
    wrapper.calls = calls  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill", help="MODULE:NAME to kill at")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--when", choices=("before", "after"), default="after")
    parser.add_argument("--count", type=Path, help="write call counts of every target here at exit")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    importlib.import_module("ignite_cv.training.fit")  # loads every module a run uses, before patching
    importlib.import_module("ignite_cv.report")
    if options.kill:

        def kill(count: int, phase: str) -> None:
            if count == options.nth and phase == options.when:
                os.kill(os.getpid(), signal.SIGKILL)

        wrap(options.kill, kill)
    if options.count:
        counts = dict.fromkeys(TARGETS, 0)

        def counter(target: str):
            def on_call(count: int, phase: str) -> None:
                if phase == "before":
                    counts[target] = count

            return on_call

        for target in TARGETS:
            wrap(target, counter(target))
        atexit.register(lambda: options.count.write_text(json.dumps(counts)))
    sys.argv = [options.script, *[a for a in options.args if a != "--"]]
    sys.path.insert(0, str(Path(options.script).resolve().parent))
    runpy.run_path(options.script, run_name="__main__")


if __name__ == "__main__":
    main()
