"""BackgroundWriter: checkpoint and training-state files are written off the training thread.

A checkpoint is taken in two parts. The *snapshot* (copying the tensors to the CPU, serialising the
JSON) runs on the training thread, so the file holds the weights of exactly that moment. The *write*
(checksum, serialisation, the temporary file, fsync, rename, deleting older files) runs on this
writer's one worker thread while training goes on: on a CPU run with short epochs, fsync waits
otherwise cost several percent of the run. One worker keeps writes in submission order (a new state
is on disk before older ones are deleted). Every write is still atomic, so a process killed in the
middle leaves the previous file intact; :meth:`wait` is called before anything reads the files back
(the test evaluation, the end of a phase, an error).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundWriter:
    """Runs ``fn(*args)`` calls on one worker thread, first in first out; errors surface in the caller.

    ``max_pending`` bounds the snapshots held in memory: :meth:`submit` waits for the oldest write
    when that many are queued (a snapshot is a copy of the weights, or of the whole training state).
    An epoch queues up to five jobs (best and last checkpoint, their removals, the state), so the
    default of 6 lets one epoch's files be written while the next epoch trains; a smaller bound
    made the training thread wait on the disk again (``benchmarks/overhead.py --breakdown``).
    """

    def __init__(self, max_pending: int = 6) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue ``fn(*args)``; first re-raise the error of any write that already failed. Returns its
        future (``result()`` waits for this write alone, and for those queued before it)."""
        self._collect(block_until=self.max_pending - 1)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ignite_cv-writer")
        future = self._executor.submit(fn, *args)
        self._pending.append(future)
        return future

    def wait(self) -> None:
        """Block until every queued write is on disk; re-raise the first error among them."""
        self._collect(block_until=0)

    def close(self) -> None:
        """Finish the queued writes and stop the worker thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    @property
    def pending(self) -> int:
        """Writes queued or running."""
        return sum(not f.done() for f in self._pending)

    def _collect(self, block_until: int) -> None:
        """Drop finished writes (raising their errors), waiting on the oldest while more than
        ``block_until`` remain queued."""
        while self._pending and (self._pending[0].done() or len(self._pending) > block_until):
            self._pending.popleft().result()


class InlineWriter(BackgroundWriter):
    """Same interface, writes at once on the calling thread (tools and tests that want no thread)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fn(*args)
        done: Future = Future()
        done.set_result(None)
        return done
