"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same folder, flush and fsync it, give it the mode a plainly created
file would have (``mkstemp`` makes 0600 files), then ``os.replace`` it over the target (atomic on POSIX
and Windows) and fsync the folder. If anything fails on the way, the temporary file is removed and
the previous file is untouched. This is the only module that renames files into place: every file
ignite_cv writes goes through it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def _file_mode() -> int:
    """Mode a plainly created file gets (0o666 minus the umask); read once, as os.umask must set to read."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: The mode of every file written here.
FILE_MODE = _file_mode()


#: The name of a temporary file made by :func:`atomic_path` (``mkstemp`` puts random letters before .tmp).
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], Any]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """An open file (``mode`` "w" or "wb") that becomes ``target`` atomically when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', got {mode!r}")
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_safetensors_atomic(
    target: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> None:
    """``tensors`` as a safetensors file at ``target``, atomically.

    safetensors reports a failed write (disk full, quota, read-only) as its own ``SafetensorError``
    whose text ends in ``(os error N)``; that becomes the ``OSError`` it is, naming ``target``, so a
    caller handles a full disk once whatever wrote the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    with atomic_path(target) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as err:
            code = re.search(r"os error (\d+)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), os.fspath(target)) from None


def remove_leftover_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writes that a killed process left under ``folder``; returns them.

    Only names this module makes (``.NAME.RANDOM.tmp``) are touched. Call it only on a folder no other
    process writes into (a run folder under its lock).
    """
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file() and _TEMP_NAME.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    write_atomic(target, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(
    target: str | os.PathLike,
    data: Any,
    default: Callable[[Any], Any] | None = None,
    strict: bool = False,
    compact: bool = False,
) -> None:
    """``data`` as JSON: tensors and arrays become lists, paths strings, ``default`` handles the rest.

    ``strict``: NaN and infinities become null (e.g. the ROC-AUC of a split with one class), so any
    JSON reader accepts the file; ``compact``: one line (long point lists), else indented.
    """

    def encode(value: Any) -> Any:
        try:
            return _json_default(value)
        except TypeError:
            if default is None:
                raise
            return default(value)

    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    if strict:
        data = finite_json(data)
    write_text_atomic(target, json.dumps(data, default=encode, allow_nan=not strict, **layout) + "\n")


def finite_json(value: Any) -> Any:
    """``value`` with NaN/inf → None and numpy scalars → Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # tensors and numpy arrays/scalars
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
