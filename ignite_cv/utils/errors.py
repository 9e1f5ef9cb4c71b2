"""User-facing errors: one line that names the problem and the fix, a non-zero exit, no traceback."""

from __future__ import annotations

import errno
import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Exit status for a user's mistake (bad flag, missing data, foreign file). 1 is left for crashes.
USER_ERROR_EXIT = 2


class UserError(Exception):
    """A mistake the user can fix. The message is one line: what is wrong, then what to do.

    Raise it anywhere in the library; :func:`exit_on_user_error` turns it into a one-line message on
    stderr and exit status 2 at the command-line boundary, so library callers can still catch it.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        super().__init__(" ".join(message.split()))


#: ``errno`` values of a write the user can fix: a full disk or quota, a read-only or forbidden
#: folder, a file-size limit.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


def write_failure(err: OSError, fix: str) -> UserError | None:
    """A failed write as a one-line UserError naming the file and the reason (None: not such an error)."""
    if err.errno not in WRITE_ERRNOS:
        return None
    where = f" {err.filename}" if err.filename else ""
    return UserError(f"cannot write{where}: {err.strerror or os_error_name(err)}", fix)


def os_error_name(err: OSError) -> str:
    return errno.errorcode.get(err.errno or 0, type(err).__name__)


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` (a scheduler's stop, ``kill PID``), raised in the main thread as Ctrl-C is: the run
    stops the same way, with its files complete, and the command exits 143 (128 + 15)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a command-line ``main``: a :class:`UserError` prints ``error: ...`` and exits 2; Ctrl-C
    and ``SIGTERM`` print one line (how to resume, when the run says) and exit 130 and 143."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(USER_ERROR_EXIT) from None
        except KeyboardInterrupt as err:
            terminated = isinstance(err, Terminated)
            hint = getattr(err, "hint", None)
            what = "terminated (SIGTERM)" if terminated else "interrupted"
            print(what + (f"; {hint}" if hint else ""), file=sys.stderr, flush=True)
            raise SystemExit(143 if terminated else 130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper
