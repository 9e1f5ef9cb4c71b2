"""The ensemble manifest: which checkpoints, with which weights, as one small JSON file.

    {
      "format": "ignite_cv-ensemble", "version": 1,
      "class_names": ["ants", "bees"],
      "members": [
        {"checkpoint": "fold-0/checkpoints/best_epoch=7_roc_auc=0.9112.safetensors",
         "sha256": "3f1c…", "weight": 1.0, "arch": "resnet18", "image_size": [96, 96]},
        …
      ]
    }

A member's path is relative to the manifest's folder when it lies below it (a study folder can be
moved whole), else absolute. Reading a manifest checks every member's SHA-256: a checkpoint that was
replaced or changed since the manifest was written is refused, so an ensemble is always the models it
was made of. The ensemble's probability is ``Σ wᵢ·pᵢ / Σ wᵢ``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import ModelCard, read_card

FORMAT = "ignite_cv-ensemble"
VERSION = 1


@dataclass(frozen=True)
class Member:
    checkpoint: Path
    sha256: str
    weight: float


@dataclass(frozen=True)
class Manifest:
    path: Path
    class_names: list[str]
    members: list[Member]

    @property
    def checkpoints(self) -> list[Path]:
        return [m.checkpoint for m in self.members]

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """``weights`` (default: all 1) checked: one per member, finite, >= 0, not all 0."""
    if weights is None or len(weights) == 0:
        return [1.0] * count
    if len(weights) != count:
        raise UserError(
            f"{len(weights)} weights for {count} checkpoints", "pass one --weights value per checkpoint"
        )
    values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise UserError(f"--weights {values} must be >= 0 and not all 0", "pass e.g. --weights 1 1 2")
    return values


def normalized(weights: Sequence[float]) -> list[float]:
    """``wᵢ / Σ w`` (a single member's weight is exactly 1.0, so its probabilities pass unchanged)."""
    total = math.fsum(weights)
    return [w / total for w in weights]


def check_same_classes(cards: Sequence[tuple[Path, ModelCard]]) -> list[str]:
    """The members' shared class names; a one-line UserError naming two that differ."""
    first_path, first = cards[0]
    names = [str(n) for n in first.class_names]
    for path, card in cards[1:]:
        other = [str(n) for n in card.class_names]
        if other != names:
            raise UserError(
                f"the checkpoints have different class names: {first_path.name} has {_short(names)}, "
                f"{path.name} has {_short(other)}",
                "ensemble models trained on the same classes, in the same order",
            )
    return names


def write_manifest(
    path: str | Path, checkpoints: Sequence[str | Path], weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """Write the manifest of ``checkpoints`` (their cards must share class names) to ``path``
    atomically; returns what was written."""
    path = Path(path)
    checkpoints = [Path(c) for c in checkpoints]
    if not checkpoints:
        raise UserError("an ensemble needs at least one checkpoint", "pass checkpoint files")
    values = check_weights(weights, len(checkpoints))
    cards = [(c, read_card(c)) for c in checkpoints]
    class_names = check_same_classes(cards)
    folder = path.resolve().parent
    members = []
    for (checkpoint, card), weight in zip(cards, values):
        members.append(
            {
                "checkpoint": _stored_path(checkpoint, folder),
                "sha256": file_sha256(checkpoint),
                "weight": weight,
                "arch": card.arch,
                "image_size": list(card.image_size),
                "in_channels": card.in_channels,
            }
        )
    data = {"format": FORMAT, "version": VERSION, "class_names": class_names, "members": members}
    write_json_atomic(path, data, strict=True)
    return data


def read_manifest(path: str | Path) -> Manifest:
    """The manifest at ``path``, every member's file present and unchanged (SHA-256), else a UserError."""
    path = Path(path)
    fix = "pass a manifest written by tools/ensemble.py (or a study's ensemble.json)"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"ensemble manifest {path} does not exist", fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not an ensemble manifest ({err})", fix) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path} is not an ensemble manifest (no format {FORMAT!r})", fix)
    if data.get("version") != VERSION:
        raise UserError(
            f"{path} is an ensemble manifest of version {data.get('version')}", "update ignite_cv"
        )
    try:
        entries = [(str(m["checkpoint"]), str(m["sha256"]), float(m["weight"])) for m in data["members"]]
        class_names = [str(n) for n in data["class_names"]]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} has a malformed member list ({err!r})", fix) from None
    if not entries:
        raise UserError(f"{path} lists no checkpoints", fix)
    check_weights([w for _, _, w in entries], len(entries))
    folder = path.resolve().parent
    members = []
    for stored, sha, weight in entries:
        checkpoint = Path(stored) if os.path.isabs(stored) else folder / stored
        if not checkpoint.is_file():
            raise UserError(
                f"{path} lists {checkpoint}, which does not exist", "restore the file or rebuild the manifest"
            )
        if file_sha256(checkpoint) != sha:
            raise UserError(
                f"{checkpoint} has changed since the ensemble manifest {path} was written (its SHA-256 "
                "differs)",
                "rebuild the manifest with tools/ensemble.py from the checkpoints you mean",
            )
        members.append(Member(checkpoint, sha, weight))
    return Manifest(path, class_names, members)


def _stored_path(checkpoint: Path, folder: Path) -> str:
    resolved = checkpoint.resolve()
    try:
        return resolved.relative_to(folder).as_posix()
    except ValueError:
        return str(resolved)


def _short(names: list[str]) -> str:
    return "[" + ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") + "]"
