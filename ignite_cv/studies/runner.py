"""Run a study: every combination of a grid as one run folder under the study folder, in turn.

A study folder holds the runs (ordinary run folders, so ``tools/compare.py STUDY`` reads them like
any others), ``study.json`` (what was asked, and one entry per run) and ``study.csv`` (the metrics
table of :func:`ignite_cv.studies.table.metrics_table`: one row per run with the grid's fields, the
test metrics, the best epoch and metric, the time of each phase and in all, and the parameters).

Rerunning a study never retrains or touches a finished run, and never deletes anything. Which run
folder is which combination is decided from the folders' own ``config.json``, not from names: a
combination whose resolved config (bookkeeping fields aside, a field missing from an older run's
config counting as its default) equals a folder's is that run —

- finished (``summary.json``): skipped;
- killed with a training state: resumed in its folder (fit's ``--resume RUN_DIR``: from the newest
  valid state, bitwise as if it had not stopped with ``--deterministic``);
- killed before its first state: trained anew in a new folder (the old one is left as it is).

So a study is extended by rerunning it with more values (or more fields, or other flags): only the
combinations that no folder holds yet train. Runs train in this process, one after another, with
:func:`ignite_cv.training.fit.fit` on the recipe's config object itself: the config that was checked is
the one that trains, torch and Ignite are imported once (seconds per run on a small CPU), and a
user's mistake stops the run with fit's one-line error. A run that fails that way is recorded and
the study goes on with the next one; anything else (Ctrl-C, a crash) stops the study, which the next
call resumes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ignite_cv.studies.grid import Axis, Combination, combinations, run_name, typed_values
from ignite_cv.studies.runs import CONFIG, SUMMARY, is_run_folder, load_run
from ignite_cv.studies.table import BOOKKEEPING_FIELDS, MetricsTable, metrics_table
from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import make_options, option_fields

__all__ = ["PlannedRun", "StudyPlan", "plan_study", "run_study", "same_run", "study_table"]

STUDY_JSON = "study.json"
STUDY_CSV = "study.csv"
#: Bumped when study.json changes shape.
STUDY_FORMAT = 1
#: What a run's ``lr_find.json`` says when ``--lr-find apply`` replaced an LR in its config.
LR_FIND_FILE = "lr_find.json"
#: Folder of the training states (see ``ignite_cv.training.resume.state_folder``).
STATE_FOLDER = Path("checkpoints") / "state"


@dataclass
class PlannedRun:
    """One combination: its folder name, its config and what the study does with it (``skip``: it is
    finished; ``resume``: it has a training state; ``train``: a new run in ``folder``)."""

    index: int
    combination: Combination
    config: Any
    folder: Path
    action: str
    note: str = ""

    @property
    def name(self) -> str:
        return self.folder.name


@dataclass
class StudyPlan:
    study_dir: Path
    recipes: list[str]
    axes: list[Axis]
    argv: list[str]
    runs: list[PlannedRun] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {a: sum(r.action == a for r in self.runs) for a in ("skip", "resume", "train")}


# ----------------------------------------------------------------------------------------------
# which folder is which run


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _applied_lr(stored: dict[str, Any], folder: Path) -> dict[str, Any]:
    """With ``--lr-find apply`` the run's config holds the LR the finder chose; ``lr_find.json`` keeps
    the one asked for, which is what identifies the run."""
    if stored.get("lr_find") != "apply" or not (folder / LR_FIND_FILE).is_file():
        return {}
    try:
        record = json.loads((folder / LR_FIND_FILE).read_text())
        return {record["option"]: record["configured_lr"]} if record.get("applied") else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def same_run(stored: dict[str, Any], config: Any, folder: Path | None = None) -> bool:
    """Whether a run folder's ``config.json`` (``stored``) is the run ``config`` asks for: every field
    equal but the bookkeeping ones (output folder, run name, resume, logging cadence, workers, live
    curves); a field the stored config lacks (a run made before the option existed) counts as the
    field's default."""
    defaults = {f.name: f.default for f in option_fields(type(config))}
    applied = _applied_lr(stored, folder) if folder is not None else {}
    for name, value in config.to_dict().items():
        if name in BOOKKEEPING_FIELDS:
            continue
        have = applied.get(name, stored.get(name, defaults.get(name)))
        if _normal(have) != _normal(value):
            return False
    return True


def _has_state(folder: Path) -> bool:
    states = folder / STATE_FOLDER
    return states.is_dir() and any(p.suffix == ".safetensors" for p in states.iterdir())


def _read_configs(study_dir: Path) -> dict[Path, dict]:
    found = {}
    if not study_dir.is_dir():
        return found
    for folder in sorted(p for p in study_dir.iterdir() if is_run_folder(p)):
        try:
            config = json.loads((folder / CONFIG).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict):
            found[folder] = config
    return found


def _free_folder(study_dir: Path, name: str, taken: set[Path]) -> Path:
    for attempt in range(1, 1000):
        candidate = study_dir / (name if attempt == 1 else f"{name}-{attempt}")
        if not candidate.exists() and candidate not in taken:
            return candidate
    raise UserError(f"too many folders named {name} in {study_dir}", "use another --output-dir")


# ----------------------------------------------------------------------------------------------
# planning


def plan_study(
    study_dir: str | Path,
    classes: dict[str, type],
    axes: Sequence[Axis],
    fixed: dict[str, dict[str, Any]],
    argv: Sequence[str] = (),
) -> StudyPlan:
    """Every combination of ``axes`` for each recipe of ``classes`` (name → config class), with the
    flags for every run ``fixed`` (per recipe), as a config checked like a flag; and what to do with
    each, from the run folders ``study_dir`` already holds. Nothing is written."""
    study_dir = Path(study_dir)
    if study_dir.exists() and not study_dir.is_dir():
        raise UserError(f"--output-dir {study_dir} is a file", "pass a folder for the study")
    if is_run_folder(study_dir):
        raise UserError(
            f"--output-dir {study_dir} is a run folder, not a study folder", "pass a new or a study folder"
        )
    plan = StudyPlan(study_dir, list(classes), list(axes), list(argv))
    existing = _read_configs(study_dir)
    several = len(classes) > 1
    taken: set[Path] = set()
    for index, combination in enumerate(combinations(list(classes), axes)):
        cls = classes[combination.recipe]
        values = {**fixed.get(combination.recipe, {}), **typed_values(cls, combination.recipe, combination)}
        values["output_dir"] = str(study_dir)
        config = make_options(cls, values)
        matches = [folder for folder, stored in existing.items() if same_run(stored, config, folder)]
        matches = [m for m in matches if m not in taken]
        finished = [m for m in matches if (m / SUMMARY).is_file()]
        resumable = [m for m in matches if m not in finished and _has_state(m)]
        if finished:
            run = PlannedRun(index, combination, config, finished[0], "skip")
        elif resumable:
            folder = resumable[0]
            run = PlannedRun(
                index, combination, dataclasses.replace(config, resume=str(folder)), folder, "resume"
            )
        else:
            folder = _free_folder(study_dir, run_name(combination, several), taken)
            note = f"{matches[0].name} stopped before its first training state" if matches else ""
            config = dataclasses.replace(config, run_name=folder.name)
            run = PlannedRun(index, combination, config, folder, "train", note)
        taken.add(run.folder)
        plan.runs.append(run)
    return plan


# ----------------------------------------------------------------------------------------------
# running


def _default_fit(config):
    from ignite_cv.training.fit import fit

    return fit(config)


def run_study(
    plan: StudyPlan,
    fit: Callable[[Any], Any] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the plan's runs in turn (``fit(config)``; default :func:`ignite_cv.training.fit.fit`),
    rewriting ``study.json`` and ``study.csv`` before the first and after every run. Returns
    study.json's content. A run's :class:`UserError` is recorded and the study goes on."""
    fit = fit or _default_fit
    errors: dict[str, str] = {}
    write_study_files(plan, errors)
    total = len(plan.runs)
    for run in plan.runs:
        where = f"[{run.index + 1}/{total}] {run.name}"
        if run.action == "skip":
            say(f"{where}: finished, skipped")
            continue
        say(f"{where}: " + ("resuming from its training state" if run.action == "resume" else "training"))
        if run.note:
            say(f"{where}: {run.note}; training it anew")
        deterministic, benchmark = (
            torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark,
        )
        try:
            fit(run.config)
        except UserError as err:
            errors[run.name] = str(err)
            say(f"{where}: failed: {err}")
        finally:
            # runs share this process: one run's global switches must not reach the next
            torch.use_deterministic_algorithms(deterministic)
            torch.backends.cudnn.benchmark = benchmark
            write_study_files(plan, errors)
    return json.loads((plan.study_dir / STUDY_JSON).read_text())


# ----------------------------------------------------------------------------------------------
# study.json and study.csv


def _status(folder: Path, error: str | None) -> str:
    if (folder / SUMMARY).is_file():
        return "finished"
    if error:
        return "failed"
    return "unfinished" if is_run_folder(folder) else "pending"


def _previous(study_dir: Path) -> dict[str, Any]:
    path = study_dir / STUDY_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise UserError(
            f"{path} is not valid JSON ({err})", "restore it, or move it away to start it afresh"
        ) from None
    return data if isinstance(data, dict) else {}


def study_table(study_dir: Path, entries: Sequence[dict[str, Any]], fields: Sequence[str]) -> MetricsTable:
    """The metrics table of the study's runs that have a folder, with a ``status`` column."""
    present = [e for e in entries if is_run_folder(study_dir / e["run"])]
    records = [load_run(study_dir / e["run"]) for e in present]
    table = metrics_table(records, list(fields))
    header = [table.header[0], "status", *table.header[1:]]
    rows = [[row[0], e["status"], *row[1:]] for row, e in zip(table.rows, present)]
    return MetricsTable(header, rows)


def write_study_files(plan: StudyPlan, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """``study.json`` (the grid asked for, over every call, and one entry per run) and ``study.csv``
    (:func:`study_table`), written atomically; earlier calls' runs are kept."""
    errors = errors or {}
    study_dir = plan.study_dir
    previous = _previous(study_dir)
    entries: dict[str, dict[str, Any]] = {e["run"]: e for e in previous.get("runs", []) if "run" in e}
    for run in plan.runs:
        entries[run.name] = {
            "run": run.name,
            "recipe": run.combination.recipe,
            "values": run.combination.values,
        }
    for name, entry in entries.items():
        entry["status"] = _status(study_dir / name, errors.get(name) or entry.get("error"))
        if name in errors:
            entry["error"] = errors[name]
        elif entry["status"] == "finished":
            entry.pop("error", None)
    recipes = list(dict.fromkeys([*previous.get("recipes", []), *plan.recipes]))
    grid: dict[str, list[str]] = {k: list(v) for k, v in previous.get("grid", {}).items()}
    for axis in plan.axes:
        for i, name in enumerate(axis.fields):
            known = grid.setdefault(name, [])
            known.extend(v[i] for v in axis.values if v[i] not in known)
    fields = (["recipe"] if len(recipes) > 1 else []) + list(grid)
    calls = list(previous.get("calls", []))
    if not calls or calls[-1].get("argv") != plan.argv:
        calls.append({"argv": plan.argv, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    table = study_table(study_dir, list(entries.values()), fields)
    rows = {row[0]: dict(zip(table.header, row)) for row in table.rows}
    runs = [{**entry, **rows.get(name, {})} for name, entry in entries.items()]
    data = {
        "format": STUDY_FORMAT,
        "recipes": recipes,
        "grid": grid,
        "fields": fields,
        "calls": calls,
        "runs": runs,
    }
    study_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(study_dir / STUDY_JSON, data)
    write_text_atomic(study_dir / STUDY_CSV, table.to_csv())
    return data
