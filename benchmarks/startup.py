"""Where the fixed seconds of a short run go: imports, data, statistics, engines, first step, test,
report, figures, TensorBoard.

Three measurements of ``python RECIPE --epochs 1`` (default: TinyVGG on the bundled digits):

1. **Wall time**: ``--runs`` runs as separate processes (median). The run's own epoch time (training +
   validation, ``metrics.jsonl``'s ``time_s``) is subtracted to give the *fixed cost*: what every
   run pays whatever its length.
2. **Imports**: one run under ``python -X importtime``; the self time of every imported module, summed
   per top-level package (``torch``, ``sklearn``, ``matplotlib``, ...). Lazy imports count here
   too, whenever they happen during the run.
3. **Stages**: one run in this process with timers wrapped around the stage functions of
   ``ignite_cv.training`` (:data:`STAGES`; a name that no longer exists is reported as missing).
   Times are exclusive: a stage nested in another (the test's evaluator inside "test", figures inside
   "report") is not counted twice. "other" is the rest of ``fit`` (handlers, checkpoints, summary).

    python benchmarks/startup.py                     # 3 runs, 2 threads
    python benchmarks/startup.py --runs 5 --threads 1
    python benchmarks/startup.py -- --dataset folder --data-root imgs/ --image-size 64

Arguments after ``--`` go to the recipe. Runs write into a temporary folder (deleted afterwards).
Last, the *library floor*: the wall time of a process that only imports what a run imports and builds
one optimizer (:data:`FLOOR_CODE`); the fixed cost above it is ignite_cv's own work.

``--baseline DIR`` (another checkout, e.g. ``git archive main | tar -x -C DIR``) only alternates runs of
that checkout and this one and prints both medians: a before/after on a machine that is not quiet.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import functools
import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (module, attribute, stage): the callables timed in the in-process run. ``Class.method`` names a
#: method. Update when ``fit`` is restructured; missing names are listed, never fatal.
STAGES: list[tuple[str, str, str]] = [
    ("ignite_cv.cli", "parse_config", "config"),
    ("ignite_cv.training.fit", "start_process", "process (allocator, seeds, device)"),
    ("ignite_cv.training.fit", "load_data", "data: load"),
    ("ignite_cv.training.fit", "place_data", "data: decode / place"),
    ("ignite_cv.training.fit", "resolve_normalization", "statistics"),
    ("ignite_cv.training.fit", "_build_model", "model"),
    ("ignite_cv.training.fit", "resume_state", "run folder"),
    ("ignite_cv.training.run_output", "RunOutput.open", "run folder"),
    ("ignite_cv.training.run_output", "RunOutput.start", "run folder"),
    ("ignite_cv.training.fit", "create_evaluator", "engines"),
    ("ignite_cv.training.loop", "create_trainer", "engines"),
    ("ignite_cv.training.loop", "make_optimizer", "optimizer (its first one imports torch._dynamo)"),
    ("ignite_cv.training.run_hooks", "attach_run_profiler", "profiler"),
    ("ignite_cv.training.run_hooks", "model_summary_text", "model summary"),
    ("ignite_cv.handlers.checkpoint", "SafetensorsSaver.__call__", "checkpoints"),
    ("ignite_cv.training.run_hooks", "write_state", "training state"),
    ("ignite_cv.training.run_hooks", "snapshot_state", "training state"),
    ("ignite_cv.training.curves", "LiveCurves.close", "learning curves (the last figure)"),
    ("ignite_cv.training.fit", "_best_net", "test: reload the best checkpoint"),
    ("ignite_cv.training.fit", "decide_threshold", "threshold"),
    ("ignite_cv.training.fit", "_evaluate_test", "test"),
    ("ignite_cv.training.run_output", "RunOutput.write_report", "report (tables, files)"),
    ("ignite_cv.explain.report_cams", "write_report_cams", "report CAMs (maps)"),
    ("ignite_cv.explain.report_cams", "cam_grid_picture", "figures"),
    ("ignite_cv.explain.report_cams", "write_png", "figures"),
    ("ignite_cv.report", "confusion_matrix_figure", "figures"),
    ("ignite_cv.report", "roc_figure", "figures"),
    ("ignite_cv.report", "precision_recall_figure", "figures"),
    ("ignite_cv.report", "labelled_grid", "figures"),
    ("ignite_cv.report", "save_figure", "figures"),
    ("ignite_cv.report", "write_png", "figures"),
    ("ignite_cv.training.curves", "learning_curves_figure", "figures"),
    ("ignite_cv.training.curves", "save_figure", "figures"),
    ("ignite_cv.training.run_output", "RunOutput.finish", "summary, TensorBoard close"),
    ("ignite_cv.handlers.tensorboard", "RunTensorBoard.__init__", "TensorBoard"),
    ("ignite_cv.handlers.tensorboard", "RunTensorBoard.add_text", "TensorBoard"),
    ("ignite_cv.handlers.tensorboard", "RunTensorBoard.add_hparams", "TensorBoard"),
]


# ----------------------------------------------------------------------------------------------
# exclusive stage timer


class StageClock:
    """Exclusive wall time per stage name: entering a stage pauses the one it is nested in."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = collections.defaultdict(float)
        self._stack: list[tuple[str, float]] = []

    def enter(self, name: str) -> None:
        now = time.perf_counter()
        if self._stack:
            outer, since = self._stack[-1]
            self.totals[outer] += now - since
        self._stack.append((name, now))

    def leave(self) -> None:
        now = time.perf_counter()
        name, since = self._stack.pop()
        self.totals[name] += now - since
        if self._stack:
            outer, _ = self._stack[-1]
            self._stack[-1] = (outer, now)

    @property
    def current(self) -> str | None:
        return self._stack[-1][0] if self._stack else None

    @contextlib.contextmanager
    def stage(self, name: str):
        self.enter(name)
        try:
            yield
        finally:
            self.leave()


def _timed(clock: StageClock, name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with clock.stage(name):
            return fn(*args, **kwargs)

    return wrapper


def _watch_trainer(clock: StageClock, engine) -> None:
    """First iteration → "first step"; the rest of each epoch → "train epoch"."""
    from ignite.engine import Events

    def started(_):
        clock.enter("first step" if engine.state.iteration == 0 else "train epoch")

    def first_done(_):
        if engine.state.iteration == 1:
            clock.leave()
            clock.enter("train epoch")

    engine.add_event_handler(Events.EPOCH_STARTED, started)
    engine.add_event_handler(Events.ITERATION_COMPLETED, first_done)
    # Attached now, before fit's own handlers: fires before the validation run it triggers.
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: clock.leave())


def _watch_evaluator(clock: StageClock, engine) -> None:
    run = engine.run

    def timed_run(*args, **kwargs):
        with clock.stage("test" if clock.current == "test" else "validation"):
            return run(*args, **kwargs)

    engine.run = timed_run


def install(clock: StageClock) -> list[str]:
    """Wrap every :data:`STAGES` entry that exists; returns the missing ones."""
    missing = []
    for module_name, attr, stage in STAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name}.{attr}")
            continue
        owner, _, name = attr.rpartition(".")
        target = getattr(module, owner, None) if owner else module
        fn = getattr(target, name, None) if target is not None else None
        if fn is None:
            missing.append(f"{module_name}.{attr}")
            continue
        wrapped = _timed(clock, stage, fn)
        if name in ("create_trainer", "create_evaluator"):
            watch = _watch_trainer if name == "create_trainer" else _watch_evaluator

            def wrapped(*args, _fn=fn, _stage=stage, _watch=watch, **kwargs):
                with clock.stage(_stage):
                    engine = _fn(*args, **kwargs)
                _watch(clock, engine)
                return engine

        setattr(target, name, wrapped)
    return missing


def stages_in_process(recipe: str, recipe_args: list[str], out_json: str) -> None:
    """The in-process run (``--stages-child``): time imports, then every stage of ``fit``."""
    start = time.perf_counter()
    clock = StageClock()
    clock.enter("imports (before fit)")
    import runpy

    import ignite_cv.cli  # noqa: F401
    import ignite_cv.training  # noqa: F401

    clock.leave()
    missing = install(clock)
    sys.argv = [recipe, *recipe_args]
    from ignite_cv.utils.atomic import write_json_atomic

    def write() -> None:  # at exit: the recipe's __main__ ends the process (end_process)
        clock.leave()
        total = time.perf_counter() - start
        write_json_atomic(out_json, {"total": total, "stages": dict(clock.totals), "missing": missing})

    atexit.register(write)
    clock.enter("other")
    with contextlib.redirect_stdout(sys.stderr):
        try:
            runpy.run_path(recipe, run_name="__main__")
        except SystemExit as err:
            if err.code not in (0, None):
                atexit.unregister(write)
                raise


# ----------------------------------------------------------------------------------------------
# runs as separate processes


def _env(threads: int, repo: Path = REPO) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _epoch_time(output_dir: Path) -> float:
    """The first epoch's training + validation seconds from the run's ``metrics.jsonl``."""
    (history,) = output_dir.glob("*/metrics.jsonl")
    row = json.loads(history.read_text().splitlines()[0])
    for key in ("time_s", "epoch_time_s", "seconds", "time"):
        if key in row:
            return float(row[key])
    raise KeyError(f"no epoch time in {history}: {sorted(row)}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(recipe: str, recipe_args: list[str], threads: int, out: Path, repo: Path = REPO) -> tuple:
    """(wall s, epoch s, CPU s) of ``recipe --epochs 1`` in a separate process, with ``repo``'s ignite_cv."""
    cmd = [sys.executable, recipe, "--epochs", "1", "--output-dir", str(out), *recipe_args]
    t0, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, check=True, env=_env(threads, repo), cwd=repo, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _epoch_time(out), _children_cpu() - cpu


def wall_runs(recipe: str, recipe_args: list[str], runs: int, threads: int, tmp: Path) -> list[tuple]:
    """(wall s, epoch s, CPU s) of ``runs`` separate processes."""
    results = []
    for i in range(runs):
        results.append(one_run(recipe, recipe_args, threads, tmp / f"wall{i}"))
        wall, epoch, cpu = results[-1]
        print(f"  run {i + 1}: wall {wall:.2f} s, epoch {epoch:.2f} s, CPU {cpu:.2f} s", flush=True)
    return results


def compare(recipe: str, recipe_args: list[str], runs: int, threads: int, baseline: Path, tmp: Path) -> None:
    """Alternating runs of ``baseline``'s checkout and this one; medians of wall, fixed cost and CPU."""
    results: dict[str, list[tuple]] = {"baseline": [], "this": []}
    for i in range(runs):
        for name, repo in (("baseline", baseline), ("this", REPO)):
            results[name].append(one_run(recipe, recipe_args, threads, tmp / f"{name}{i}", repo))
        print(
            f"  pair {i + 1}: "
            + ", ".join(f"{n} wall {r[-1][0]:.2f} s (epoch {r[-1][1]:.2f} s)" for n, r in results.items()),
            flush=True,
        )
    floor = library_floor(runs, threads)
    print(
        f"\n{'':<9} {'wall':>6} {'fixed':>6} {'own':>6} {'CPU':>6}   (medians of {runs} alternating runs, "
        f"seconds; own = fixed - the library floor {floor:.2f} s)"
    )
    for name, rows in results.items():
        wall = statistics.median(w for w, _, _ in rows)
        fixed = statistics.median(w - e for w, e, _ in rows)
        cpu = statistics.median(c for _, _, c in rows)
        print(f"{name:<9} {wall:6.2f} {fixed:6.2f} {fixed - floor:6.2f} {cpu:6.2f}")


_IMPORT_LINE = re.compile(r"import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)")


def import_times(recipe: str, recipe_args: list[str], threads: int, tmp: Path) -> dict[str, float]:
    """Seconds of import self time per top-level package, from one ``-X importtime`` run."""
    out = tmp / "imports"
    cmd = [
        sys.executable,
        "-X",
        "importtime",
        recipe,
        "--epochs",
        "1",
        "--output-dir",
        str(out),
        *recipe_args,
    ]
    proc = subprocess.run(
        cmd,
        check=True,
        env=_env(threads),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    per_package: dict[str, float] = collections.defaultdict(float)
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            per_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1e6
    return dict(per_package)


#: What every run's process does before any ignite_cv work: start Python, import what ``fit`` imports
#: (torch, Ignite, matplotlib, TensorBoard, ...) and build one optimizer (torch imports ``torch._dynamo``
#: on the first ``add_param_group``), and end as a command does (``os._exit``, no teardown of the
#: modules: :mod:`ignite_cv.utils.process_exit`). The fixed cost above this is ignite_cv's own.
FLOOR_CODE = (
    "import os, torch, ignite_cv.training.fit, ignite_cv.cli; "
    "torch.optim.Adam(torch.nn.Linear(2, 2).parameters()); os._exit(0)"
)


def library_floor(runs: int, threads: int, repo: Path = REPO) -> float:
    """Median wall seconds of ``python -c FLOOR_CODE``."""
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR_CODE], check=True, env=_env(threads, repo), cwd=repo)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def _table(rows: list[tuple[str, str, str]], head: tuple[str, str, str]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = [f"{head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]:>{widths[2]}}"]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    recipe_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, recipe_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/tinyvgg.py")
    parser.add_argument("--runs", type=int, default=3, help="separate runs timed for the wall time")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the runs (0 = unset)")
    parser.add_argument("--skip-imports", action="store_true", help="no -X importtime run")
    parser.add_argument(
        "--baseline", default="", help="another checkout (e.g. main): only alternate its runs with this one's"
    )
    parser.add_argument("--stages-child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stages_child:
        stages_in_process(args.recipe, recipe_args, args.stages_child)
        return

    print(f"{args.recipe} --epochs 1 {' '.join(recipe_args)} (threads {args.threads or 'default'})")
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.baseline:
            compare(args.recipe, recipe_args, args.runs, args.threads, Path(args.baseline).resolve(), tmp)
            return
        walls = wall_runs(args.recipe, recipe_args, args.runs, args.threads, tmp)
        wall = statistics.median(w for w, _, _ in walls)
        epoch = statistics.median(e for _, e, _ in walls)
        fixed = statistics.median(w - e for w, e, _ in walls)
        cpu = statistics.median(c for _, _, c in walls)

        stage_file = tmp / "stages.json"
        cmd = [sys.executable, __file__, "--recipe", args.recipe, "--stages-child", str(stage_file), "--"]
        cmd += ["--epochs", "1", "--output-dir", str(tmp / "stages"), *recipe_args]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=_env(args.threads), cwd=REPO, stderr=subprocess.DEVNULL)
        stage_wall = time.perf_counter() - t0
        measured = json.loads(stage_file.read_text())
        imports = {} if args.skip_imports else import_times(args.recipe, recipe_args, args.threads, tmp)
        floor = library_floor(args.runs, args.threads)

    stages = measured["stages"]
    stages["interpreter start-up and exit"] = max(stage_wall - measured["total"], 0.0)
    total = sum(stages.values())
    rows = [
        (name, f"{sec:.2f}", f"{100 * sec / total:.0f} %")
        for name, sec in sorted(stages.items(), key=lambda kv: -kv[1])
    ]
    print("\nstages of one run (exclusive wall seconds; lazy imports count in the stage that triggers them)")
    print(_table(rows, ("stage", "s", "share")))
    print(f"{'total':<{max(len(r[0]) for r in rows)}}  {total:.2f}")
    if measured["missing"]:
        print(f"not timed (no longer exist): {', '.join(measured['missing'])}")
    if imports:
        total_imports = sum(imports.values())
        top = sorted(imports.items(), key=lambda kv: -kv[1])
        shown = [(name, f"{sec:.2f}", f"{100 * sec / total_imports:.0f} %") for name, sec in top[:14]]
        rest = sum(sec for _, sec in top[14:])
        shown.append((f"{len(top) - 14} others", f"{rest:.2f}", f"{100 * rest / total_imports:.0f} %"))
        print("\nimports of one run (python -X importtime: self time per top-level package)")
        print(_table(shown, ("package", "s", "share")))
        print(f"total imports {total_imports:.2f} s")
    print(
        f"\nwall (median of {len(walls)}): {wall:.2f} s; its epoch (train + validation): {epoch:.2f} s; "
        f"fixed cost (wall - epoch, median): {fixed:.2f} s; CPU (all processes): {cpu:.2f} s"
    )
    print(
        f"library floor (python -c '{FLOOR_CODE}', median of {args.runs}): {floor:.2f} s; "
        f"ignite_cv's own fixed cost (fixed - floor): {fixed - floor:.2f} s"
    )


if __name__ == "__main__":
    main()
