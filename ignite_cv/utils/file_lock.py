"""An exclusive lock on a file, held for the life of a process: one writer per run folder.

``flock`` (BSD locks, as ``fcntl.flock``) belongs to the open file: the kernel releases it when the
file is closed or the process ends in any way (an exception, ``SIGKILL``, a power cut ends the lock
with the process), so a lock is never left behind. The holder writes its process id into the file,
so another process can say who holds it. The lock file itself is never deleted (deleting it would
let two processes lock two different files of the same name).

Why not a library: ``filelock`` (the usual one) does the same with ``fcntl`` on POSIX but cannot name
the holder; this is twenty lines of standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is advisory anyway, so it is skipped there
    fcntl = None  # type: ignore[assignment]


class LockHeld(Exception):
    """The lock is held by another process (``pid``, when the holder wrote it)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        super().__init__(f"{path} is locked by process {pid if pid is not None else '(unknown)'}")


class FileLock:
    """``FileLock.acquire(path)`` or raise :class:`LockHeld`; ``release()`` or the process end frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: str | os.PathLike) -> FileLock:
        """Take the lock without waiting. The file is created if absent but not written to:
        :meth:`write_pid` says who holds it (a caller that only looks changes no file)."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockHeld(path, read_pid(path)) from None
        return cls(path, fd)

    def write_pid(self) -> None:
        """Record this process's id in the lock file, for the message another process prints."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the file releases the flock
            self._fd = -1

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_pid(path: str | os.PathLike) -> int | None:
    """The process id written in a lock file (None when absent or unreadable)."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def is_locked(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock on ``path`` now (False when the file does not exist)."""
    if not Path(path).exists():
        return False
    try:
        FileLock.acquire(path).release()
    except LockHeld:
        return True
    return False
