"""Write synthetic run folders in the exact formats a recipe writes (config.json, metrics.jsonl,
summary.json, report/confusion_matrix.csv), for comparisons of many runs without training them.

The formats follow a real run (see ``tests/studies/conftest.py``, which also makes real runs): the
config is a recipe dataclass's fields, each history row has ``epoch``, ``phase``, ``lr``,
``epoch_time_s``, ``train/loss``, ``train/accuracy`` and the ``val/...`` scalars and per-class lists,
and the summary has ``test``, ``test_confusion_matrix``, ``best``, ``epochs_run``, ``wall_time_s``,
``params`` and per-phase entries.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tests.recipe_utils import load_recipe

SCALARS = ("precision_macro", "recall_macro", "f1_macro", "roc_auc")


def recipe_config(recipe: str = "resnet_finetune", **overrides: Any) -> dict[str, Any]:
    """A resolved config: the recipe dataclass's defaults with ``overrides``."""
    module = load_recipe(recipe)
    cls = next(
        v for v in vars(module).values() if dataclasses.is_dataclass(v) and v.__module__ == module.__name__
    )
    config = dataclasses.asdict(cls())
    unknown = set(overrides) - set(config)
    assert not unknown, f"not config fields: {unknown}"
    config.update(overrides)
    return config


def write_run(
    folder: Path,
    config: dict[str, Any],
    phases: Sequence[tuple[str, int]] = (("train", 3),),
    classes: Sequence[str] = ("cat", "dog"),
    metrics: Sequence[str] = SCALARS,
    finished: bool = True,
    accuracy: float = 0.8,
    unfrozen_blocks: Sequence[int | None] | None = None,
    params: tuple[int, int] = (1000, 1000),
    val_confusion: bool = True,
    seed: int = 0,
) -> Path:
    """A run folder. ``phases``: (name, epochs); ``metrics``: the validation/test scalars besides loss
    and accuracy; ``unfrozen_blocks``: per phase (``None``: a plain phase without that entry);
    ``params``: (total, trainable of the last phase); ``finished=False`` writes no summary/report;
    ``val_confusion``: store each epoch's validation confusion matrix, as real runs do."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    k = len(classes)
    rows, epoch = [], 0
    for name, epochs in phases:
        for _ in range(epochs):
            epoch += 1
            row: dict[str, Any] = {"epoch": epoch, "phase": name, "lr": 1e-3 / epoch, "epoch_time_s": 0.5}
            row["train/loss"] = float(1.0 / epoch + rng.random() * 0.1)
            row["train/accuracy"] = float(min(1.0, accuracy * epoch / (epoch + 1)))
            row["val/loss"] = float(1.1 / epoch)
            row["val/accuracy"] = float(min(1.0, accuracy * epoch / (epoch + 0.8)))
            for metric in metrics:
                row[f"val/{metric}"] = float(min(1.0, accuracy + 0.01 * epoch))
            for per_class in ("precision", "recall", "f1"):
                row[f"val/{per_class}"] = [float(accuracy)] * k
            if val_confusion:
                row["val/confusion_matrix"] = (np.eye(k, dtype=int) * (10 + epoch)).tolist()
            rows.append(row)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if not finished:
        return folder
    total, trainable = params
    phase_entries = []
    blocks = list(unfrozen_blocks) if unfrozen_blocks is not None else [None] * len(phases)
    for index, ((name, epochs), unfrozen) in enumerate(zip(phases, blocks)):
        last = index == len(phases) - 1
        entry: dict[str, Any] = {
            "name": name,
            "epochs": epochs,
            "stopped_by": "epochs",
            "wall_time_s": round(0.5 * epochs + 0.1 * (index + 1) + seed * 0.01, 3),
            "params": {"total": total, "trainable": trainable if last else max(1, trainable // 10)},
        }
        if unfrozen is not None:
            entry["unfrozen_blocks"] = [f"b{i}" for i in range(unfrozen)]
            entry["num_unfrozen_blocks"] = unfrozen
            entry["trainable_layers"] = unfrozen + 1
        phase_entries.append(entry)
    n = 20 * k
    correct = int(round(accuracy * 20))
    matrix = np.full((k, k), 0, dtype=int)
    for i in range(k):
        matrix[i, i] = correct
        matrix[i, (i + 1) % k] += 20 - correct
    test = {"loss": 0.5, "accuracy": float(np.trace(matrix) / n)}
    test.update({m: float(accuracy) for m in metrics})
    summary = {
        "run_dir": str(folder),
        "test": test,
        "test_confusion_matrix": matrix.tolist(),
        "best": {"metric": "accuracy", "mode": "max", "value": rows[-1]["val/accuracy"], "epoch": epoch},
        "best_checkpoint": str(folder / "checkpoints" / f"best_epoch={epoch}.safetensors"),
        "epochs_run": epoch,
        "wall_time_s": round(sum(p["wall_time_s"] for p in phase_entries) + 1.0, 3),
        "params": {"total": total, "trainable": trainable},
        "phases": phase_entries,
        "world_size": 1,
        "data": {"train": 100, "val": 20, "test": n, "skipped": 0},
        "report": str(folder / "report"),
        "explain": {"method": "gradcam", "files": ["cams_wrong.png", "cams_correct.png"]},
        "threshold": 0.5 if k == 2 else None,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "report").mkdir()
    lines = ["true \\ predicted," + ",".join(classes)]
    lines += [f"{name}," + ",".join(str(v) for v in matrix[i]) for i, name in enumerate(classes)]
    (folder / "report" / "confusion_matrix.csv").write_text("\n".join(lines) + "\n")
    return folder


#: A transfer-learning grid of 12 runs: 2 networks × (random: scratch, extract; file: extract,
#: finetune 1, finetune 2, finetune all). ``(model, weights, mode, unfreeze, accuracy)``.
GRID_12 = [
    (model, weights, mode, unfreeze, acc)
    for model, base in (("resnet18", 0.0), ("alexnet_small", -0.08))
    for weights, mode, unfreeze, acc in (
        ("none", "scratch", "all", 0.72),
        ("none", "extract", "all", 0.41),
        ("pretrained.safetensors", "extract", "all", 0.80),
        ("pretrained.safetensors", "finetune", "1", 0.86),
        ("pretrained.safetensors", "finetune", "2", 0.89),
        ("pretrained.safetensors", "finetune", "all", 0.93),
    )
    for acc in [acc + base]
]

BLOCKS = {"resnet18": 5, "alexnet_small": 7}


def write_grid_12(root: Path, classes: Sequence[str] = tuple("abcdefghij")) -> list[Path]:
    """The 12 runs of :data:`GRID_12` under ``root`` (a study folder), as recipes would write them."""
    folders = []
    for index, (model, weights, mode, unfreeze, acc) in enumerate(GRID_12):
        config = recipe_config(
            model=model, weights=weights, mode=mode, unfreeze=unfreeze, epochs=6, warmup_epochs=2
        )
        blocks = BLOCKS[model]
        if mode == "scratch":
            phases, unfrozen, trainable = [("train", 6)], None, 1000
        elif mode == "extract":
            phases, unfrozen, trainable = [("extract", 6)], [0], 10
        else:
            n = blocks if unfreeze == "all" else int(unfreeze)
            phases, unfrozen = [("warmup", 2), ("finetune", 4)], [0, n]
            trainable = 1000 if unfreeze == "all" else 100 * n
        folders.append(
            write_run(
                root / f"{index:02d}-{model}-{Path(weights).stem}-{mode}-{unfreeze}",
                config,
                phases=phases,
                classes=classes,
                accuracy=acc,
                unfrozen_blocks=unfrozen,
                params=(1000, trainable),
                seed=index,
            )
        )
    return folders
