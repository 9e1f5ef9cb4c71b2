"""Fault injection: a run SIGKILLed anywhere in its life and resumed ends as if it had never stopped.

A ``--deterministic`` digits run with ``--prune-after`` is killed at seeded random points across its
whole lifecycle — before its first training state, mid-epoch, at an epoch's end (between its
checkpoint, history row and state), during the test evaluation, during the report, during pruning
(its evaluations, its fine-tune, its file) and before the summary — by the process itself
(``tests/e2e/fault_shim.py`` wraps one library function to ``SIGKILL`` at its N-th call; the library
has no test hook). Each trial then resumes the run with ``--resume RUN`` and must end with the
uninterrupted run's weights (last, best and pruned checkpoints, bitwise), its ``metrics.jsonl`` rows
(each epoch once, the same values) and its ``summary.json`` test and pruning metrics.

``IGNITE_CV_FAULT_TRIALS=N`` runs N trials (default 6: one per lifecycle stage);
``IGNITE_CV_FAULT_SEED`` changes the points; ``IGNITE_CV_FAULT_REPORT=FILE`` writes where each trial
landed as JSON.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.recipe_utils import REPO

TINYVGG = REPO / "recipes" / "tinyvgg.py"
EPOCHS, ITERATIONS_PER_EPOCH, STATE_EVERY = 3, 11, 4  # digits: 1295 training images, batch 128
RUN_ARGS = [
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "128",
    "--hidden-units",
    "4",
    "--workers",
    "0",
    "--deterministic",
    "--checkpoint-every",
    str(STATE_EVERY),
    "--image-grid-every",
    "0",
    "--prune-after",
    "0.5",
    "--prune-finetune-epochs",
    "1",
    "--log-every",
    "5",
    "--explain",
    "none",  # the report's CAMs cost 2.5 s a process here; what is killed and resumed stays the same
]
ITERATION = "ignite_cv.handlers.nonfinite:TerminateOnNonFiniteLoss._record"
TRAINING_ITERATIONS = EPOCHS * ITERATIONS_PER_EPOCH


def _python(args: list[str], cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _shim(options: list[str], run_args: list[str], cwd) -> subprocess.CompletedProcess:
    return _python(["-m", "tests.e2e.fault_shim", *options, str(TINYVGG), "--", *run_args], cwd)


def _stages(counts: dict[str, int]) -> dict[str, list[tuple[str, int, str]]]:
    """Kill points by lifecycle stage: (target, nth call, before/after), from a reference run's counts."""
    states, _checkpoints = (
        counts["ignite_cv.training_state:write_state"],
        counts["ignite_cv.weights:save_weights"],
    )
    evaluations, figures = (
        counts["ignite_cv.evaluation:run_evaluation"],
        counts["ignite_cv.figures:save_figure"],
    )
    pruning_iterations = counts[ITERATION] - TRAINING_ITERATIONS
    assert states > EPOCHS and evaluations >= 3 and figures >= 2 and pruning_iterations > 0, counts
    mid_epoch = [n for n in range(STATE_EVERY + 1, TRAINING_ITERATIONS) if n % ITERATIONS_PER_EPOCH]
    return {
        "before the first state": [(ITERATION, n, "after") for n in range(1, STATE_EVERY)],
        "mid-epoch": [(ITERATION, n, "after") for n in mid_epoch],
        "at an epoch end": [
            *[("ignite_cv.handlers.history:_append_line", n, "before") for n in range(1, EPOCHS + 1)],
            *[
                ("ignite_cv.training_state:write_state", n, w)
                for n in range(1, states + 1)
                for w in ("before", "after")
            ],
            *[("ignite_cv.weights:save_weights", n, "before") for n in range(1, 2 * EPOCHS)],
        ],
        "during the test evaluation": [
            ("ignite_cv.evaluation:run_evaluation", 1, w) for w in ("before", "after")
        ],
        "during the report": [
            ("ignite_cv.report:write_test_report", 1, "before"),
            *[
                ("ignite_cv.figures:save_figure", n, w)
                for n in range(1, figures + 1)
                for w in ("before", "after")
            ],
        ],
        "during pruning": [
            *[(ITERATION, TRAINING_ITERATIONS + n, "after") for n in range(1, pruning_iterations + 1)],
            *[("ignite_cv.evaluation:run_evaluation", n, "before") for n in range(2, evaluations + 1)],
            ("ignite_cv.prune.workflow:_finetune", 1, "before"),
            ("ignite_cv.prune.core:save_pruned", 1, "after"),
            ("ignite_cv.training.run_output:RunOutput.finish", 1, "before"),
        ],
    }


def _rows(path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in rows]


def _tensors(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _same_tensors(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _outcome(run_dir) -> dict:
    """What must not depend on kills: weights, history rows, test and pruning metrics."""
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoints = run_dir / "checkpoints"
    return {
        "last": _tensors(next(checkpoints.glob("last_epoch=*.safetensors"))),
        "best_name": sorted(p.name for p in checkpoints.glob("best_*.safetensors")),
        "best": _tensors(summary["best_checkpoint"]),
        "pruned": _tensors(run_dir / "pruning" / "pruned.safetensors"),
        "rows": _rows(run_dir / "metrics.jsonl"),
        "prune_rows": _rows(run_dir / "pruning" / "finetune_metrics.jsonl"),
        "test": summary["test"],
        "best_summary": summary["best"],
        "epochs_run": summary["epochs_run"],
        "pruned_test": {k: summary["pruning"]["after"][k] for k in ("test_accuracy", "test_loss")},
    }


def _differences(reference: dict, trial: dict) -> list[str]:
    found = []
    for key in ("last", "best", "pruned"):
        if not _same_tensors(reference[key], trial[key]):
            found.append(f"{key} weights differ")
    for key in ("best_name", "rows", "prune_rows", "test", "best_summary", "epochs_run", "pruned_test"):
        if reference[key] != trial[key]:
            found.append(f"{key}: {trial[key]!r} != {reference[key]!r}"[:300])
    return found


def test_kills_across_the_whole_lifecycle_resume_to_the_uninterrupted_result(tmp_path):
    trials = int(os.environ.get("IGNITE_CV_FAULT_TRIALS", "6"))
    rng = random.Random(int(os.environ.get("IGNITE_CV_FAULT_SEED", "19")))
    counts_file = tmp_path / "counts.json"
    reference = _shim(
        ["--count", str(counts_file)],
        [*RUN_ARGS, "--output-dir", str(tmp_path), "--run-name", "ref"],
        tmp_path,
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = _outcome(tmp_path / "ref")
    assert [row["epoch"] for row in expected["rows"]] == list(range(1, EPOCHS + 1))
    stages = _stages(json.loads(counts_file.read_text()))

    landed, failures = [], []
    names = list(stages)
    for index in range(trials):
        stage = names[index % len(names)]  # every stage once, then again with other points
        target, nth, when = rng.choice(stages[stage])
        run_name = f"trial{index}"
        run_dir = tmp_path / run_name
        killed = _shim(
            ["--kill", target, "--nth", str(nth), "--when", when],
            [*RUN_ARGS, "--output-dir", str(tmp_path), "--run-name", run_name],
            tmp_path,
        )
        assert killed.returncode == -signal.SIGKILL, (stage, target, nth, killed.stderr[-2000:])
        resumed = _python([str(TINYVGG), "--resume", str(run_dir)], tmp_path)
        assert resumed.returncode == 0, (stage, target, nth, resumed.stderr[-3000:])
        resumed_from = [
            line for line in resumed.stdout.splitlines() if "resuming" in line or "from the start" in line
        ]
        landed.append({"stage": stage, "target": target, "nth": nth, "when": when, "resume": resumed_from})
        problems = _differences(expected, _outcome(run_dir))
        if problems:
            failures.append((stage, target, nth, when, problems))
    report = os.environ.get("IGNITE_CV_FAULT_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump(
                {"trials": trials, "landed": landed, "failures": [list(f) for f in failures]},
                handle,
                indent=1,
            )
    for entry in landed:
        print(
            f"{entry['stage']}: {entry['target']} call {entry['nth']} ({entry['when']}) -> {entry['resume']}"
        )
    assert not failures, failures
    assert {entry["stage"] for entry in landed} == set(names[: min(trials, len(names))])
