"""What a user should know about a model before trusting its predictions: its card and its run.

The checkpoint's card gives the architecture, classes and input; when the checkpoint sits in a run
folder (``<run>/checkpoints/NAME.safetensors``) the run's ``config.json`` names the training data
and its ``summary.json`` holds the test metrics. Both files are only read as JSON; a missing or
unreadable one just leaves its fields out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignite_cv.utils.text import human_count

RUN_FILES = ("config.json", "summary.json")


def run_folder_of(checkpoint: str | Path) -> Path | None:
    """The run folder of a checkpoint in ``<run>/checkpoints/``, if it has a config or summary."""
    folder = Path(checkpoint).resolve().parent
    if folder.name != "checkpoints":
        return None
    run = folder.parent
    return run if any((run / name).is_file() for name in RUN_FILES) else None


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class ModelInfo:
    """A model card for people. ``test_metrics``: the run's ``summary.json`` test metrics, if found."""

    checkpoint: str
    arch: str
    class_names: list[str]
    input: str
    params: int
    decision: str
    epoch: int | None = None
    data: str | None = None
    run_dir: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("checkpoint", self.checkpoint),
            ("architecture", f"{self.arch} ({human_count(self.params)} parameters)"),
            ("classes", f"{len(self.class_names)}: {', '.join(self.class_names)}"),
            ("input", self.input),
            ("decision", self.decision),
        ]
        if self.epoch is not None:
            rows.append(("epoch", str(self.epoch)))
        if self.data:
            rows.append(("training data", self.data))
        if self.test_metrics:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in self.test_metrics.items() if isinstance(v, float))
            rows.append(("test metrics (run summary)", shown))
        return rows

    def markdown(self) -> str:
        """One ``- **field**: value`` line per row (Markdown, as the web app shows it)."""
        return "\n".join(f"- **{k}**: {_escape(v)}" for k, v in self.rows())


def _escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_[]<>|" else c for c in text)


def model_info(checkpoint: str | Path, card: Any, params: int, input_text: str, decision: str) -> ModelInfo:
    run = run_folder_of(checkpoint) if checkpoint else None
    config = read_json(run / "config.json") if run else None
    summary = read_json(run / "summary.json") if run else None
    epoch = card.extra.get("epoch")
    info = ModelInfo(
        checkpoint=str(checkpoint),
        arch=card.arch,
        class_names=[str(n) for n in card.class_names],
        input=input_text,
        params=params,
        decision=decision,
        epoch=epoch if isinstance(epoch, int) else None,
        run_dir=str(run) if run else None,
    )
    if config:
        root = config.get("data_root") or ""
        info.data = f"{config.get('dataset', '?')}" + (f" ({root})" if root else "")
    if summary and isinstance(summary.get("test"), dict):
        info.test_metrics = {
            k: float(v) for k, v in summary["test"].items() if isinstance(v, (int, float)) and k != "loss"
        }
    return info
