"""A run folder's life: made or resumed by one process at a time, with the config it was started with,
finished once.

:func:`claim_run` is the first thing ``fit`` does, in the process that launches the run (the plain
process, the parent of ``--nproc-per-node`` workers, or rank 0 under ``torchrun``), before any data is
read:

* **One process per run folder.** The folder's ``.lock`` file is locked (``flock``) for the life of the
  process; a second process gets one line naming the process that holds it. The kernel drops the lock
  when the process ends in any way, ``SIGKILL`` included, so no stale lock is ever left.
* **A new run** gets its folder now (a read-only or full output folder fails here, in one line). If the
  run then stops on a bad input before it saved a training state, the folder is removed again: no
  half-written run folder is left behind.
* **A resumed run** (``--resume RUN_DIR`` or ``auto``: the newest folder of the recipe that is neither
  finished nor locked by another process) continues with the config saved in its ``config.json``.
  Flags given on the command line, and a ``config.json`` edited since its training state was saved,
  must agree with it, except for :data:`RESUME_MAY_CHANGE`: where and how the run computes, saves and
  reports, and ``--epochs`` to extend a run whose schedule does not depend on it. Anything else is
  refused, naming each field that differs. Temporary files of writes a kill interrupted are removed.
* **A finished run** (``summary.json`` is written last) resumed says so and changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_cv.run_folder import RunFolder
from ignite_cv.training.resume import state_folder
from ignite_cv.training_state import list_states, read_state_meta
from ignite_cv.utils.atomic import remove_leftover_temp_files, write_json_atomic
from ignite_cv.utils.distributed import is_launcher
from ignite_cv.utils.errors import UserError, write_failure
from ignite_cv.utils.file_lock import FileLock, LockHeld
from ignite_cv.utils.options import (
    changed_options,
    flag,
    load_config_values,
    make_options,
    option_fields,
)

LOCK_FILE = ".lock"
SUMMARY_FILE = "summary.json"

#: Config fields that may differ when a run is resumed: where it runs and how it saves and reports,
#: not what it trains. ``epochs`` may grow (to extend a run) unless the schedule is planned over it.
RESUME_MAY_CHANGE = frozenset(
    {
        "resume",
        "output_dir",
        "run_name",
        "device",
        "workers",
        "data_on_device",
        "nproc_per_node",
        "backend",
        "log_every",
        "image_grid_every",
        "checkpoint_every",
        "keep_states",
        "profile",
        "profile_warmup_steps",
        "profile_trace_steps",
        "cache_dir",
        "no_cache",
        "live_curves",
        "epochs",
    }
)
#: Schedules whose shape is planned over the run's total epochs: ``--epochs`` cannot change under them.
SCHEDULES_OVER_EPOCHS = ("onecycle", "cosine")


@dataclass
class RunClaim:
    """The run folder this process owns (None on the ranks that do not write) and the config to train.

    ``finished`` holds the saved summary of a finished run that was resumed: there is nothing to do.
    """

    path: Path | None
    config: Any
    new: bool
    finished: dict | None = None


@contextlib.contextmanager
def claim_run(config: Any, say: Callable[[str], None] = print) -> Iterator[RunClaim]:
    """Lock the run folder (made now for a new run) for the duration; see the module docstring."""
    if not is_launcher():  # another rank under torchrun: rank 0 claims the folder, this one follows
        run_dir = _newest_resumable(config) if config.resume else None
        yield RunClaim(None, resumed_config(config, run_dir)[0] if run_dir else config, not config.resume)
        return
    if config.resume:
        with _claim_resumed(config, say) as claim:
            yield claim
        return
    folder = RunFolder.create(config.output_dir, config.recipe, config.run_name)
    try:
        lock = _lock(folder.path)
    except UserError:
        shutil.rmtree(folder.path, ignore_errors=True)
        raise
    try:
        try:
            folder.write_json("config.json", config.to_dict())  # at once: a run killed now can be resumed
        except OSError as err:
            raise write_failure(err, "free space or pass a writable --output-dir") or err from None
        yield RunClaim(folder.path, config, new=True)
    except (UserError, KeyboardInterrupt) as err:
        if list_states(state_folder(folder.path)):
            if isinstance(err, KeyboardInterrupt):
                err.hint = f"resume with --resume {folder.path}"  # type: ignore[attr-defined]
        else:  # nothing to resume from: leave no folder behind
            lock.release()
            shutil.rmtree(folder.path, ignore_errors=True)
        raise
    finally:
        lock.release()


@contextlib.contextmanager
def _claim_resumed(config: Any, say: Callable[[str], None]) -> Iterator[RunClaim]:
    explicit = config.resume != "auto"
    candidates = [_explicit_run_dir(config.resume)] if explicit else _auto_candidates(config)
    skipped: list[str] = []
    for run_dir in candidates:
        if is_finished(run_dir):
            if explicit:
                yield _finished(config, run_dir, say)
                return
            skipped.append(f"{run_dir.name} is finished")
            continue
        try:
            lock = _lock(run_dir)
        except UserError:
            if explicit:
                raise
            skipped.append(f"{run_dir.name} is in use")
            continue
        try:
            resumed, changed = resumed_config(config, run_dir)
            if changed:
                # as a new run would write it: --config of this file starts a new run, not a resume
                write_json_atomic(run_dir / "config.json", {**resumed.to_dict(), "resume": ""})
                say(f"resuming with {', '.join(f'{flag(k)} {v}' for k, v in changed.items())}")
            removed = remove_leftover_temp_files(run_dir)
            if removed:
                say(f"removed {len(removed)} temporary files left by an interrupted write")
            if not list_states(state_folder(run_dir)):
                _start_over(run_dir, say)
            try:
                yield RunClaim(run_dir, resumed, new=False)
            except KeyboardInterrupt as err:
                err.hint = f"resume with --resume {run_dir}"  # type: ignore[attr-defined]
                raise
        finally:
            lock.release()
        return
    base = Path(config.output_dir)
    raise UserError(
        f"--resume auto found no resumable {config.recipe} run in {base}"
        + (f" ({'; '.join(skipped)})" if skipped else ""),
        "pass --resume RUN_DIR or start a new run",
    )


def _start_over(run_dir: Path, say: Callable[[str], None]) -> None:
    """A run stopped before its first training state: it trains from the start in its own folder;
    checkpoint files of the attempt (no state refers to them) are removed so none is left stale."""
    for stale in (run_dir / "checkpoints").glob("*.safetensors"):
        stale.unlink(missing_ok=True)
    say(f"{run_dir} has no training state yet (it stopped before its first save): training from the start")


def is_finished(run_dir: Path) -> bool:
    """A run is finished once its summary is written (the last file a run writes)."""
    return (Path(run_dir) / SUMMARY_FILE).is_file()


def _lock(run_dir: Path) -> FileLock:
    try:
        lock = FileLock.acquire(run_dir / LOCK_FILE)
    except LockHeld as held:
        who = f"process {held.pid}" if held.pid is not None else "another process"
        raise UserError(
            f"run folder {run_dir} is in use by {who}",
            "wait for it to end (or stop it) and resume again, or start a new run",
        ) from None
    except OSError as err:
        raise UserError(
            f"cannot lock run folder {run_dir} ({err.strerror})", "pass a writable folder"
        ) from None
    lock.write_pid()
    return lock


def _finished(config: Any, run_dir: Path, say: Callable[[str], None]) -> RunClaim:
    """A finished run resumed: nothing changes. ``--epochs`` to train longer is refused (its summary
    and report stand for the run as it ended)."""
    try:
        saved = load_config_values(type(config), run_dir / "config.json")
    except UserError:
        saved = {}
    if "epochs" in changed_options(config) and saved.get("epochs") not in (None, config.epochs):
        raise UserError(
            f"run {run_dir} is finished ({saved.get('epochs')} epochs, summary.json written): "
            f"it cannot be extended to --epochs {config.epochs}",
            "start a new run (--weights of its best checkpoint starts from its weights)",
        )
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    say(f"run {run_dir} is already finished (summary.json): nothing to resume, no file changed")
    return RunClaim(run_dir, config, new=False, finished=summary)


def _explicit_run_dir(text: str) -> Path:
    run_dir = Path(text)
    if not (run_dir / "config.json").is_file():
        raise UserError(
            f"--resume {run_dir} is not an ignite_cv run folder (no config.json)",
            "pass a folder under --output-dir that a run created",
        )
    return run_dir


def _auto_candidates(config: Any) -> list[Path]:
    """This recipe's run folders in ``--output-dir`` that hold a training state, newest first."""
    base = Path(config.output_dir)
    found = [p for p in base.glob(f"{config.recipe}-*") if list_states(state_folder(p))]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _newest_resumable(config: Any) -> Path:
    if config.resume != "auto":
        return _explicit_run_dir(config.resume)
    for run_dir in _auto_candidates(config):
        if not is_finished(run_dir):
            return run_dir
    raise UserError(f"--resume auto found no resumable run in {config.output_dir}", "pass --resume RUN_DIR")


def resumed_config(config: Any, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The config of the run in ``run_dir`` with the allowed changes ``config`` asks for, and those
    changes; a UserError naming every other field that differs (from the flags, or between
    ``config.json`` and the newest training state)."""
    cls = type(config)
    saved = make_options(cls, load_config_values(cls, run_dir / "config.json"))
    asked = {
        name: getattr(config, name)
        for name in changed_options(config) - {"resume", "output_dir", "run_name"}
        if getattr(config, name) != getattr(saved, name)
    }
    refused = {name: value for name, value in asked.items() if name not in RESUME_MAY_CHANGE}
    if refused:
        listed = ", ".join(
            f"{flag(n)} {v} (the run has {getattr(saved, n)})" for n, v in sorted(refused.items())
        )
        raise UserError(
            f"--resume {run_dir} with settings that differ from the run's config.json: {listed}",
            "drop them to continue the run as it was configured, or start a new run with them "
            "(on resume only "
            + ", ".join(flag(n) for n in sorted(RESUME_MAY_CHANGE - {"resume", "output_dir", "run_name"}))
            + " may change)",
        )
    _check_state_config(saved, run_dir)
    if "epochs" in asked:
        _check_extension(saved, asked["epochs"], run_dir)
    values = {f.name: getattr(saved, f.name) for f in option_fields(cls)}
    values.update(asked)
    # The folder may have moved since: the run's location is where it is now.
    values.update(resume=str(run_dir), output_dir=str(run_dir.parent), run_name=run_dir.name)
    return make_options(cls, values), asked


def _check_state_config(saved: Any, run_dir: Path) -> None:
    """``config.json`` must be the config the newest training state was trained with (it is only read,
    so an edit would silently change the rest of the run: a batch size, a schedule...)."""
    states = list_states(state_folder(run_dir))
    meta = read_state_meta(states[0]) if states else None
    trained = (meta or {}).get("config")
    if not isinstance(trained, dict):  # states written before configs were stored in them
        return
    cls = type(saved)
    known = {f.name for f in option_fields(cls)}
    try:
        state_config = make_options(cls, {k: v for k, v in trained.items() if k in known})
    except UserError:
        return
    differ = [
        f"{n} is {getattr(saved, n)!r} in config.json but {getattr(state_config, n)!r} in the state"
        for n in sorted(known - RESUME_MAY_CHANGE)
        if n in trained and getattr(saved, n) != getattr(state_config, n)
    ]
    if differ:
        raise UserError(
            f"{run_dir / 'config.json'} was edited since its training state {states[0].name} was saved: "
            + "; ".join(differ),
            "restore the values the state was trained with, or start a new run with the new ones",
        )


def _check_extension(saved: Any, epochs: int, run_dir: Path) -> None:
    if epochs < saved.epochs:
        raise UserError(
            f"--epochs {epochs} on --resume would shorten the run to fewer than its {saved.epochs} epochs",
            f"pass --epochs {saved.epochs} or more, or leave it out",
        )
    scheduler = getattr(saved, "scheduler", "none")
    if scheduler in SCHEDULES_OVER_EPOCHS:
        raise UserError(
            f"--resume {run_dir} with --epochs {epochs}: its {scheduler} schedule is planned over "
            f"its {saved.epochs} epochs, so it cannot be extended",
            "resume without --epochs, or start a new run "
            "(runs with --scheduler none, step or plateau can be extended)",
        )


__all__ = ["RESUME_MAY_CHANGE", "RunClaim", "claim_run", "is_finished", "resumed_config"]
