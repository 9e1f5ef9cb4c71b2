"""Run a table of bad inputs and faults against the command line and classify each outcome.

Each case runs a recipe or tool the way a user would (a subprocess, stdout/stderr captured) and ends as

* ``OK``: a bad input exits 2 with one ``error:`` line naming the problem (the case's keyword) and no
  traceback, and leaves no run folder behind; a fault the library should absorb (a finished run
  resumed, a second process on a locked folder...) behaves as the case states;
* ``weak``: it is refused, but with a traceback, several lines, an unclear message or a left-over folder;
* ``failed``: the bad value is accepted (exit 0) or the run's output is corrupted.

    python benchmarks/bad_inputs.py                      # this checkout
    python benchmarks/bad_inputs.py --repo /tmp/main-2fdd789 --only npz,resume
    python benchmarks/bad_inputs.py --markdown table.md  # the table, one row per case

It prints one line per case and the counts. Timings are not measured. A few cases (read-only output
folder, full disk) mount a small tmpfs when the process may (root); otherwise they use ``chmod`` and
``RLIMIT_FSIZE`` instead, which root ignores for ``chmod``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: A small, fast digits run: every case that trains uses these.
FAST = ["--epochs", "1", "--hidden-units", "4", "--workers", "0", "--image-grid-every", "0"]


def fast(recipe: str) -> list[str]:
    """:data:`FAST` for ``recipe`` (the MLP has no --hidden-units)."""
    return [a for a in FAST if a not in ("--hidden-units", "4")] if recipe == "mlp" else FAST


TRAIN = ["--hidden-units", "4", "--workers", "0", "--image-grid-every", "0", "--deterministic"]


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    extra: dict = field(default_factory=dict)


@dataclass
class Case:
    name: str
    group: str
    #: Builds the command (a list after ``python``) in the case's work folder.
    command: Callable[[Path], list[str]]
    #: A word the error line must contain (the problem it names), for error cases.
    keyword: str = ""
    #: None: a bad input (exit 2, one line). Else ``check(work, outcome) -> (verdict, note)``.
    check: Callable[[Path, Outcome], tuple[str, str]] | None = None
    #: Runs the command itself (concurrency, signals); default: run it and wait.
    runner: Callable[[Case, Path], Outcome] | None = None
    timeout: float = 300


# --- running -----------------------------------------------------------------------------------


class Runner:
    def __init__(self, repo: Path, scratch: Path) -> None:
        self.repo = repo
        self.scratch = scratch
        self.env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONWARNINGS": "ignore"}
        self._base: dict[str, Path] = {}

    def recipe(self, name: str = "tinyvgg") -> str:
        return str(self.repo / "recipes" / f"{name}.py")

    def tool(self, name: str) -> str:
        return str(self.repo / "tools" / f"{name}.py")

    def popen(self, args: list[str], cwd: Path, preexec=None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )

    def run(self, args: list[str], cwd: Path, timeout: float = 300, preexec=None) -> Outcome:
        proc = self.popen(args, cwd, preexec)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return Outcome(None, out, err + "\n(timed out)")
        return Outcome(proc.returncode, out, err)

    # runs shared by several cases (each case copies what it changes)

    def finished_run(self) -> Path:
        """A finished 2-epoch digits run (with a few states)."""
        if "finished" not in self._base:
            out = self.scratch / "base"
            result = self.run(
                [self.recipe(), *TRAIN, "--epochs", "2", "--output-dir", str(out), "--run-name", "done"],
                self.scratch,
            )
            if result.code != 0:
                raise RuntimeError(f"the base run failed: {result.err[-2000:]}")
            self._base["finished"] = out / "done"
        return self._base["finished"]

    def partial_run(self) -> Path:
        """A 6-epoch digits run killed after its first training state (it can be resumed)."""
        if "partial" not in self._base:
            out = self.scratch / "base"
            run_dir = out / "partial"
            proc = self.popen(
                [self.recipe(), *TRAIN, "--epochs", "6", "--output-dir", str(out), "--run-name", "partial"],
                self.scratch,
            )
            states = run_dir / "checkpoints" / "state"
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                if states.is_dir() and any(p.suffix == ".safetensors" for p in states.iterdir()):
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.05)
            proc.communicate()
            self._base["partial"] = run_dir
        return self._base["partial"]

    def copy_run(self, source: Path, work: Path, name: str = "run") -> Path:
        target = work / "runs" / name
        shutil.copytree(source, target)
        return target

    def checkpoint(self) -> Path:
        return next((self.finished_run() / "checkpoints").glob("best_*.safetensors"))


def error_verdict(case: Case, work: Path, outcome: Outcome) -> tuple[str, str]:
    """A bad input: OK = exit 2, one ``error:`` line with the keyword, no traceback, no run folder."""
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    leftover = _new_run_folders(work)
    if outcome.code == 0:
        return "failed", "accepted (exit 0)"
    note = lines[-1][:160] if lines else "(no message)"
    if outcome.code != 2 or "Traceback" in outcome.err:
        return "weak", f"exit {outcome.code}, {len(lines)} stderr lines: {note}"
    if len(lines) != 1 or not lines[0].startswith("error:"):
        return "weak", f"{len(lines)} stderr lines: {note}"
    if case.keyword and case.keyword.lower() not in lines[0].lower():
        return "weak", f"does not name {case.keyword!r}: {note}"
    if leftover:
        return "weak", f"left {leftover[0].name}/ behind: {note}"
    return "OK", note


def _new_run_folders(work: Path) -> list[Path]:
    out = work / "out"
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``folder``: to tell whether a command changed anything."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut short by a kill
            rows.append(json.loads(line))
    return rows


def _duplicate_epochs(run_dir: Path) -> list[int]:
    epochs = [r.get("epoch") for r in _rows(run_dir)]
    return sorted({e for e in epochs if epochs.count(e) > 1})


# --- the cases -----------------------------------------------------------------------------------


def flag_cases(r: Runner) -> list[Case]:
    def bad(name: str, flags: list[str], keyword: str, recipe: str = "tinyvgg") -> Case:
        return Case(
            name,
            "flags",
            lambda work: [r.recipe(recipe), *fast(recipe), *flags, "--output-dir", str(work / "out")],
            keyword,
        )

    return [
        bad("--epochs 0", ["--epochs", "0"], "--epochs"),
        bad("--epochs -3", ["--epochs", "-3"], "--epochs"),
        bad("--lr -1", ["--lr", "-1"], "--lr"),
        bad("--lr nan", ["--lr", "nan"], "--lr"),
        bad("--lr inf", ["--lr", "inf"], "--lr"),
        bad("--keep-states 0", ["--keep-states", "0"], "--keep-states"),
        bad("--keep-best 0", ["--keep-best", "0"], "--keep-best"),
        bad("--log-every 0", ["--log-every", "0"], "--log-every"),
        bad("--accumulate-steps 0", ["--accumulate-steps", "0"], "--accumulate-steps"),
        bad("--dropout 2", ["--dropout", "2"], "--dropout"),
        bad("--patience -1", ["--patience", "-1"], "--patience"),
        bad("--checkpoint-every -1", ["--checkpoint-every", "-1"], "--checkpoint-every"),
        bad("--image-grid-every -1", ["--image-grid-every", "-1"], "--image-grid-every"),
        bad("--nproc-per-node -1", ["--nproc-per-node", "-1"], "--nproc-per-node"),
        bad("--monitor bogus", ["--monitor", "bogus"], "--monitor"),
        bad("--monitor top5 (10 classes)", ["--monitor", "top5"], "top5"),
        bad("--batch-size 0", ["--batch-size", "0"], "--batch-size"),
        bad("--batch-size 12.5", ["--batch-size", "12.5"], "--batch-size"),
        bad("--val-fraction 1.5", ["--val-fraction", "1.5"], "--val-fraction"),
        bad("--val-fraction 0", ["--val-fraction", "0"], "--val-fraction"),
        bad("--image-size -1", ["--image-size", "-1"], "--image-size"),
        bad("--image-size 100000", ["--image-size", "100000"], "--image-size"),
        bad("--channels 2", ["--channels", "2"], "--channels"),
        bad("--workers -1", ["--workers", "-1"], "--workers"),
        bad("--hidden-units 0", ["--hidden-units", "0"], "--hidden-units"),
        bad("--weight-decay -1", ["--weight-decay", "-1"], "--weight-decay"),
        bad("--momentum 2", ["--momentum", "2"], "--momentum"),
        bad("--label-smoothing 1", ["--label-smoothing", "1"], "--label-smoothing"),
        bad("--grad-clip -1", ["--grad-clip", "-1"], "--grad-clip"),
        bad("--seed -1", ["--seed", "-1"], "--seed"),
        bad("--augment bogus", ["--augment", "bogus"], "--augment"),
        bad("--aug-flip-p 2", ["--augment", "flip", "--aug-flip-p", "2"], "--aug-flip-p"),
        bad("--aug-crop-scale-min 0", ["--augment", "standard", "--aug-crop-scale-min", "0"], "crop"),
        bad("--gcn-scale 0", ["--normalize", "gcn", "--gcn-scale", "0"], "--gcn-scale"),
        bad("--step-size 0", ["--scheduler", "step", "--step-size", "0"], "--step-size"),
        bad("--gamma 0", ["--gamma", "0"], "--gamma"),
        bad("--lr-warmup-epochs -1", ["--lr-warmup-epochs", "-1"], "--lr-warmup-epochs"),
        bad("--device bogus", ["--device", "bogus"], "--device"),
        bad("--run-name a/b", ["--run-name", "a/b"], "--run-name"),
        bad("--prune-after 2", ["--prune-after", "2"], "--prune-after"),
        bad(
            "--prune-finetune-epochs -1", ["--prune-after", "0.5", "--prune-finetune-epochs", "-1"], "epochs"
        ),
        bad("--profile-trace-steps 0", ["--profile", "--profile-trace-steps", "0"], "--profile-trace-steps"),
        bad("--deterministic maybe", ["--deterministic", "maybe"], "--deterministic"),
        bad("--hidden-sizes a,b (mlp)", ["--hidden-sizes", "a,b"], "--hidden-sizes", recipe="mlp"),
        bad("--hidden-sizes 0 (mlp)", ["--hidden-sizes", "0"], "--hidden-sizes", recipe="mlp"),
        bad("--data-on-device maybe", ["--data-on-device", "maybe"], "--data-on-device"),
        bad("--resume /nonexistent", ["--resume", "/nonexistent/run"], "--resume"),
        bad("--resume auto (no runs)", ["--resume", "auto"], "--resume"),
    ]


def config_cases(r: Runner) -> list[Case]:
    def config(name: str, content, keyword: str, raw: str | None = None) -> Case:
        def command(work: Path) -> list[str]:
            path = work / "config.json"
            # the fast settings go into the file (a flag would override the value under test)
            fast = {"epochs": 1, "hidden_units": 4, "workers": 0, "image_grid_every": 0}
            merged = {**fast, **content} if isinstance(content, dict) else content
            path.write_text(raw if raw is not None else json.dumps(merged))
            return [r.recipe(), "--config", str(path), "--output-dir", str(work / "out")]

        return Case(name, "config", command, keyword)

    return [
        config('"epochs": "ten"', {"epochs": "ten"}, "--epochs"),
        config('"batch_size": 12.5', {"batch_size": 12.5}, "--batch-size"),
        config('"lr": null', {"lr": None}, "--lr"),
        config('"deterministic": "no"', {"deterministic": "no"}, "--deterministic"),
        config('"hidden_units": true', {"hidden_units": True}, "--hidden-units"),
        config('"epochs": 0', {"epochs": 0}, "--epochs"),
        config('"hidden_sizes": "64"', {"hidden_sizes": "64"}, "--hidden-sizes"),
        config("a JSON list", [1, 2], "object"),
        config("unknown key", {"epochz": 3}, "epochz"),
        config("invalid JSON", None, "JSON", raw="{epochs: 3"),
        Case(
            "missing --config file",
            "config",
            lambda work: [
                r.recipe(),
                *FAST,
                "--config",
                str(work / "nope.json"),
                "--output-dir",
                str(work / "out"),
            ],
            "nope.json",
        ),
    ]


def _save_npz(path: Path, **arrays) -> Path:
    import numpy as np

    np.savez(path, **arrays)
    return path


def data_cases(r: Runner) -> list[Case]:
    import numpy as np

    def npz(name: str, keyword: str, make: Callable[[], dict]) -> Case:
        def command(work: Path) -> list[str]:
            path = _save_npz(work / "data.npz", **make())
            return [
                r.recipe(),
                *FAST,
                "--dataset",
                "npz",
                "--data-root",
                str(path),
                "--batch-size",
                "16",
                "--output-dir",
                str(work / "out"),
            ]

        return Case(name, "data", command, keyword)

    rng = np.random.default_rng(0)

    def images(n: int, size: int = 8) -> np.ndarray:
        return rng.integers(0, 255, (n, size, size), dtype=np.uint8)

    def labels(n: int, classes: int = 2) -> np.ndarray:
        return np.arange(n) % classes

    def huge_label():
        y = labels(40)
        y[3] = 10**9
        return {"train_images": images(40), "train_labels": y}

    def unseen_val():
        return {
            "train_images": images(40),
            "train_labels": labels(40),
            "val_images": images(10),
            "val_labels": np.full(10, 2),
            "test_images": images(10),
            "test_labels": labels(10),
        }

    def folder(name: str, keyword: str, classes: dict[str, int], check=None) -> Case:
        def command(work: Path) -> list[str]:
            from PIL import Image

            root = work / "images"
            for cls, count in classes.items():
                (root / cls).mkdir(parents=True, exist_ok=True)
                for i in range(count):
                    Image.fromarray(images(1, 16)[0]).save(root / cls / f"{i}.png")
            return [
                r.recipe(),
                *FAST,
                "--dataset",
                "folder",
                "--data-root",
                str(root),
                "--image-size",
                "16",
                "--batch-size",
                "8",
                "--output-dir",
                str(work / "out"),
            ]

        return Case(name, "data", command, keyword, check=check)

    def newline_name_command(work: Path) -> list[str]:
        from PIL import Image

        root = work / "images"
        for cls in ("a", "b"):
            (root / cls).mkdir(parents=True)
            for i in range(12):
                Image.fromarray(images(1, 16)[0]).save(root / cls / f"{i}.png")
        (root / "a" / "bad\nname.png").write_bytes(b"not an image")
        return [
            r.recipe(),
            *FAST,
            "--dataset",
            "folder",
            "--data-root",
            str(root),
            "--image-size",
            "16",
            "--batch-size",
            "8",
            "--output-dir",
            str(work / "out"),
            "--run-name",
            "nl",
        ]

    def newline_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        listed = work / "out" / "nl" / "data_skipped.txt"
        if outcome.code != 0 or not listed.exists():
            return "weak", f"exit {outcome.code}"
        lines = listed.read_text().splitlines()
        if len(lines) == 1 and "bad\\nname.png" in lines[0]:
            return "OK", f"listed as {lines[0][:80]!r}"
        return "failed", f"data_skipped.txt has {len(lines)} lines for 1 file: {lines!r}"[:160]

    return [
        npz("npz label 10^9", "label", huge_label),
        npz("npz val labels absent from train", "val", unseen_val),
        npz(
            "npz zero samples",
            "train",
            lambda: {"train_images": np.zeros((0, 8, 8), np.uint8), "train_labels": np.zeros(0, np.int64)},
        ),
        npz(
            "npz 0x0 images",
            "shape",
            lambda: {"train_images": np.zeros((40, 0, 0), np.uint8), "train_labels": labels(40)},
        ),
        npz(
            "npz float images",
            "uint8",
            lambda: {"train_images": images(40).astype(np.float32), "train_labels": labels(40)},
        ),
        npz(
            "npz negative label",
            "label",
            lambda: {"train_images": images(40), "train_labels": labels(40) - 1},
        ),
        npz(
            "npz labels of another length",
            "labels",
            lambda: {"train_images": images(40), "train_labels": labels(39)},
        ),
        folder("folder with an empty class folder", "empty", {"a": 12, "b": 0}),
        folder("folder with one class", "class", {"a": 12}),
        Case("file name with a newline", "data", newline_name_command, check=newline_check),
    ]


def weights_cases(r: Runner) -> list[Case]:
    """``--weights`` and checkpoint files: damaged, NaN, foreign metadata, absurd sizes."""

    def damaged(work: Path, how: str) -> Path:
        source = r.checkpoint()
        data = bytearray(source.read_bytes())
        if how == "truncate":
            data = data[: len(data) // 2]
        elif how == "flip":
            data[-40] ^= 0x10  # a bit in the last tensor's bytes
        path = work / "model.safetensors"  # a neutral name: the keyword must come from the message
        path.write_bytes(bytes(data))
        return path

    def metadata(work: Path, card_edit) -> Path:
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file

        source = r.checkpoint()
        with safe_open(str(source), framework="pt") as handle:
            meta = dict(handle.metadata())
        meta["ignite_cv"] = card_edit(json.loads(meta["ignite_cv"]))
        path = work / "edited.safetensors"
        save_file(load_file(str(source)), str(path), metadata=meta)
        return path

    def evaluate(make) -> Callable[[Path], list[str]]:
        def command(work: Path) -> list[str]:
            return [
                r.tool("evaluate"),
                str(make(work)),
                "--dataset",
                "digits",
                "--output-dir",
                str(work / "out"),
            ]

        return command

    def nan_weights(work: Path) -> Path:
        """A ResNet-18 state dict full of NaN (every recipe version takes ResNet --weights)."""
        import torch
        import torchvision
        from safetensors.torch import save_file

        state = torchvision.models.resnet18().state_dict()
        tensors = {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()
        }
        path = work / "w.safetensors"
        save_file(tensors, str(path))
        return path

    def ten_to_two(work: Path) -> list[str]:
        import numpy as np

        rng = np.random.default_rng(1)
        y = np.arange(60) % 2
        path = _save_npz(
            work / "two.npz", train_images=rng.integers(0, 255, (60, 8, 8), dtype=np.uint8), train_labels=y
        )
        return [
            r.recipe(),
            *FAST,
            "--hidden-units",
            "4",
            "--dataset",
            "npz",
            "--data-root",
            str(path),
            "--weights",
            str(r.checkpoint()),
            "--batch-size",
            "16",
            "--output-dir",
            str(work / "out"),
            "--run-name",
            "w",
        ]

    def ten_to_two_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        if outcome.code == 0 and (work / "out" / "w" / "summary.json").exists():
            return "OK", "trained from the 10-class checkpoint"
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        return "weak", f"exit {outcome.code}: {lines[-1][:140] if lines else ''}"

    def nan_command(work: Path) -> list[str]:
        return [
            r.recipe("resnet_finetune"),
            *[
                "--epochs",
                "1",
                "--workers",
                "0",
                "--image-size",
                "32",
                "--mode",
                "scratch",
                "--batch-size",
                "64",
            ],
            *[
                "--image-grid-every",
                "0",
                "--weights",
                str(nan_weights(work)),
                "--output-dir",
                str(work / "out"),
            ],
        ]

    return [
        Case(
            "evaluate a truncated checkpoint",
            "weights",
            evaluate(lambda w: damaged(w, "truncate")),
            "truncated",
        ),
        Case(
            "evaluate a bit-flipped checkpoint", "weights", evaluate(lambda w: damaged(w, "flip")), "damaged"
        ),
        Case(
            "checkpoint metadata is a JSON list",
            "weights",
            evaluate(lambda w: metadata(w, lambda card: json.dumps([card]))),
            "metadata",
        ),
        Case(
            "checkpoint metadata is a string",
            "weights",
            evaluate(lambda w: metadata(w, lambda card: json.dumps("tinyvgg"))),
            "metadata",
        ),
        Case(
            "checkpoint image_size 10^6",
            "weights",
            evaluate(lambda w: metadata(w, lambda card: json.dumps({**card, "image_size": [10**6, 10**6]}))),
            "image_size",
        ),
        Case(
            "checkpoint class_names a string",
            "weights",
            evaluate(lambda w: metadata(w, lambda card: json.dumps({**card, "class_names": "0123"}))),
            "class_names",
        ),
        Case("--weights of NaN (ResNet-18)", "weights", nan_command, "w.safetensors"),
        Case("--weights 10-class TinyVGG into 2 classes", "weights", ten_to_two, check=ten_to_two_check),
    ]


def resume_cases(r: Runner) -> list[Case]:
    def finished_command(work: Path) -> list[str]:
        run = r.copy_run(r.finished_run(), work)
        (work / "before.json").write_text(json.dumps(_snapshot(run)))
        return [r.recipe(), "--resume", str(run)]

    def finished_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        run = work / "runs" / "run"
        before = json.loads((work / "before.json").read_text())
        after = _snapshot(run)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != list(after.get(k, ())))
        if outcome.code == 0 and not changed:
            return "OK", "nothing changed: " + outcome.out.strip().splitlines()[-1][:100]
        if changed:
            dup = _duplicate_epochs(run)
            return "failed", f"exit {outcome.code}; {len(changed)} files changed, duplicate epochs {dup}"
        return "weak", f"exit {outcome.code}: {outcome.err.strip()[-140:]}"

    def unfinished_after_training(work: Path) -> list[str]:
        run = r.copy_run(r.finished_run(), work)
        (run / "summary.json").unlink()
        shutil.rmtree(run / "report", ignore_errors=True)
        return [r.recipe(), "--resume", str(run)]

    def finishes_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        run = work / "runs" / "run"
        ok = (run / "summary.json").exists() and (run / "report").is_dir()
        dup = _duplicate_epochs(run)
        if outcome.code == 0 and ok and not dup:
            return "OK", "finished: summary and report written, no duplicate rows"
        if outcome.code == 0:
            return "failed", f"exit 0; summary {ok}; duplicate epochs {dup}"
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        return "weak", f"exit {outcome.code}: {lines[-1][:140] if lines else ''}"

    def changed_flag(work: Path) -> list[str]:
        run = r.copy_run(r.partial_run(), work)
        return [r.recipe(), "--resume", str(run), "--batch-size", "32"]

    def edited_config(work: Path) -> list[str]:
        run = r.copy_run(r.partial_run(), work)
        config = json.loads((run / "config.json").read_text())
        config["batch_size"] = 32
        (run / "config.json").write_text(json.dumps(config))
        return [r.recipe(), "--resume", str(run)]

    def refused_check(keyword: str):
        def check(work: Path, outcome: Outcome) -> tuple[str, str]:
            lines = [line for line in outcome.err.splitlines() if line.strip()]
            if outcome.code == 0:
                return "failed", "resumed with a different config (exit 0)"
            if outcome.code == 2 and len(lines) == 1 and keyword in lines[0]:
                return "OK", lines[0][:160]
            return "weak", f"exit {outcome.code}: {lines[-1][:140] if lines else ''}"

        return check

    def concurrent(second: Callable[[Path, Path], list[str]]):
        def runner(case: Case, work: Path) -> Outcome:
            run = r.copy_run(r.partial_run(), work, "tinyvgg-20240101-000000")  # --resume auto's pattern
            first = r.popen([r.recipe(), "--resume", str(run)], work)
            deadline = time.monotonic() + 120
            start_rows = len(_rows(run))
            while first.poll() is None and time.monotonic() < deadline:
                if len(_rows(run)) > start_rows:  # it trains: the second process starts now
                    break
                time.sleep(0.2)
            outcome = r.run(second(work, run), work, timeout=case.timeout)
            first_running = first.poll() is None
            first.wait(timeout=600)
            outcome.extra = {"first_running": first_running, "first_code": first.returncode, "run": str(run)}
            return outcome

        return runner

    def concurrent_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        run = Path(outcome.extra["run"])
        dup = _duplicate_epochs(run)
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        if dup or outcome.code == 0:
            return "failed", f"second process exit {outcome.code}; duplicate epochs {dup}"
        if not outcome.extra["first_running"]:
            return "weak", "the first process had ended before the second started"
        if outcome.code == 2 and len(lines) == 1 and "in use" in lines[0]:
            return "OK", lines[0][:160]
        return "weak", f"exit {outcome.code}: {lines[-1][:140] if lines else ''}"

    def sigterm_runner(case: Case, work: Path) -> Outcome:
        out = work / "out"
        proc = r.popen(
            [r.recipe(), *TRAIN, "--epochs", "6", "--output-dir", str(out), "--run-name", "t"], work
        )
        states = out / "t" / "checkpoints" / "state"
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if states.is_dir() and any(p.suffix == ".safetensors" for p in states.iterdir()):
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        out_text, err_text = proc.communicate(timeout=120)
        return Outcome(proc.returncode, out_text, err_text, {"states": states})

    def sigterm_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        states = [p for p in outcome.extra["states"].glob("state_*.safetensors")]
        if not states:
            return "failed", "no training state left"
        if outcome.code == 143 and len(lines) == 1:
            return "OK", lines[0][:160]
        return "weak", f"exit {outcome.code}, {len(lines)} stderr lines"

    def tmp_leftover(work: Path) -> list[str]:
        run = r.copy_run(r.partial_run(), work)
        (run / "checkpoints" / ".last_epoch=1.safetensors.abc123.tmp").write_bytes(b"x" * 100)
        (run / "checkpoints" / "state" / ".state_iter=000000021.safetensors.q.tmp").write_bytes(b"x")
        return [r.recipe(), "--resume", str(run), "--epochs", "6"]

    def tmp_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        left = list((work / "runs" / "run").rglob("*.tmp"))
        if left:
            return (
                "failed" if outcome.code == 0 else "weak",
                f"exit {outcome.code}; {len(left)} .tmp files left",
            )
        if outcome.code == 0:
            return "OK", "removed"
        return "weak", f"exit {outcome.code}: {outcome.err.strip()[-140:]}"

    def nan_no_checkpoint(work: Path) -> list[str]:
        return [
            r.recipe(),
            *FAST,
            "--lr",
            "1000",
            "--scheduler",
            "none",
            "--optimizer",
            "sgd",
            "--batch-norm",
            "no",
            "--log-every",
            "1",
            "--output-dir",
            str(work / "out"),
        ]

    def nan_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        if outcome.code == 0:
            return "failed", "exit 0"
        text = lines[-1] if lines else ""
        checkpoints = list((work / "out").rglob("*.safetensors"))
        if "last good checkpoint is in" in text and not checkpoints:
            return "weak", "names a checkpoint folder that holds none"
        if outcome.code == 2 and len(lines) == 1:
            return "OK", text[:160]
        return "weak", f"exit {outcome.code}: {text[:140]}"

    return [
        Case("--resume a finished run", "resume", finished_command, check=finished_check),
        Case(
            "--resume a run killed after training", "resume", unfinished_after_training, check=finishes_check
        ),
        Case("--resume with --batch-size changed", "resume", changed_flag, check=refused_check("batch")),
        Case("--resume with config.json edited", "resume", edited_config, check=refused_check("batch")),
        Case(
            "two --resume RUN at once",
            "resume",
            lambda w: [],
            runner=concurrent(lambda work, run: [r.recipe(), "--resume", str(run)]),
            check=concurrent_check,
        ),
        Case(
            "--resume auto while another trains",
            "resume",
            lambda w: [],
            runner=concurrent(
                lambda work, run: [r.recipe(), "--resume", "auto", "--output-dir", str(run.parent)]
            ),
            check=concurrent_check,
        ),
        Case("SIGTERM mid-run", "resume", lambda w: [], runner=sigterm_runner, check=sigterm_check),
        Case("leftover .tmp files", "resume", tmp_leftover, check=tmp_check),
        Case("NaN loss before any checkpoint", "resume", nan_no_checkpoint, check=nan_check),
    ]


def disk_cases(r: Runner) -> list[Case]:
    root = os.geteuid() == 0

    def mount(path: Path, options: str) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        if not root:
            return False
        return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]).returncode == 0

    def read_only(case: Case, work: Path) -> Outcome:
        target = work / "ro"
        mounted = mount(target, "ro,size=1m")
        if not mounted:
            target.chmod(0o555)
        try:
            outcome = r.run([r.recipe(), *FAST, "--output-dir", str(target / "runs")], work)
            outcome.extra = {"left": [str(p) for p in target.rglob("*")]}
        finally:
            if mounted:
                subprocess.run(["umount", str(target)])
            else:
                target.chmod(0o755)
        return outcome

    def read_only_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        case = Case("", "", lambda w: [], "ro")
        verdict, note = error_verdict(case, work, outcome)
        if verdict == "OK" and outcome.extra["left"]:
            return "weak", "left files behind"
        return verdict, note

    def full_disk(case: Case, work: Path) -> Outcome:
        target = work / "full"
        mounted = mount(target, "size=400k")
        preexec = None
        if not mounted:
            limit = 60_000

            def preexec():
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        try:
            outcome = r.run(
                [
                    r.recipe(),
                    *TRAIN,
                    "--hidden-units",
                    "64",
                    "--epochs",
                    "3",
                    "--output-dir",
                    str(target),
                    "--run-name",
                    "f",
                ],
                work,
                preexec=preexec,
            )
            states = sorted((target / "f" / "checkpoints" / "state").glob("state_*.safetensors"))
            outcome.extra = {"states": len(states), "readable": _states_readable(r, states)}
        finally:
            if mounted:
                subprocess.run(["umount", str(target)])
        return outcome

    def full_disk_check(work: Path, outcome: Outcome) -> tuple[str, str]:
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        if outcome.code == 0:
            return "failed", "exit 0 on a full disk"
        if not outcome.extra["readable"]:
            return "failed", "a training state left on disk does not read"
        if outcome.code == 2 and len(lines) == 1 and ("space" in lines[0] or "large" in lines[0]):
            return "OK", lines[0][:160]
        return "weak", f"exit {outcome.code}, {len(lines)} stderr lines: {lines[-1][:120] if lines else ''}"

    return [
        Case("read-only --output-dir", "disk", lambda w: [], runner=read_only, check=read_only_check),
        Case("disk full mid-run", "disk", lambda w: [], runner=full_disk, check=full_disk_check),
    ]


def _states_readable(r: Runner, states: list[Path]) -> bool:
    if not states:
        return True
    code = (
        "import sys; from ignite_cv.training_state import read_state\n[read_state(p) for p in sys.argv[1:]]"
    )
    return r.run(["-c", code, *map(str, states)], r.scratch).code == 0


def all_cases(r: Runner) -> list[Case]:
    return [
        *flag_cases(r),
        *config_cases(r),
        *data_cases(r),
        *weights_cases(r),
        *resume_cases(r),
        *disk_cases(r),
    ]


def run_case(r: Runner, case: Case, work: Path) -> tuple[str, str]:
    work.mkdir(parents=True)
    try:
        if case.runner is not None:
            outcome = case.runner(case, work)
        else:
            outcome = r.run(case.command(work), work, timeout=case.timeout)
    except Exception as err:  # the harness itself failed: say so rather than guess
        return "weak", f"harness error {type(err).__name__}: {err}"[:160]
    if outcome.code is None:
        return "weak", "timed out"
    if case.check is not None:
        return case.check(work, outcome)
    return error_verdict(case, work, outcome)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose CLI is tried")
    parser.add_argument("--only", default="", help="comma-separated groups or name fragments")
    parser.add_argument("--markdown", type=Path, help="also write the table as markdown here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bad_inputs-"))
    runner = Runner(args.repo.resolve(), scratch)
    wanted = [w for w in args.only.split(",") if w]
    cases = [c for c in all_cases(runner) if not wanted or any(w == c.group or w in c.name for w in wanted)]
    results = []
    for index, case in enumerate(cases):
        verdict, note = run_case(runner, case, scratch / f"case{index:03d}")
        results.append({"group": case.group, "case": case.name, "verdict": verdict, "note": note})
        print(f"{verdict:6s} [{case.group}] {case.name}: {note}", flush=True)
    counts = {v: sum(r["verdict"] == v for r in results) for v in ("OK", "weak", "failed")}
    print(f"{len(results)} cases: {counts['OK']} OK, {counts['weak']} weak, {counts['failed']} failed")
    if args.markdown:
        lines = ["| group | case | verdict | what happened |", "|---|---|---|---|"]
        lines += [
            f"| {r['group']} | {r['case']} | {r['verdict']} | {r['note'].replace('|', '/')} |"
            for r in results
        ]
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(
            json.dumps({"repo": str(args.repo), "counts": counts, "results": results}, indent=1)
        )
    shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
