"""User-facing errors: one line that names the problem and the fix, a non-zero exit, no traceback."""

from __future__ import annotations

import functools
import sys
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


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a command-line ``main``: a :class:`UserError` prints ``error: ...`` and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(USER_ERROR_EXIT) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            raise SystemExit(130) from None

    return wrapper
