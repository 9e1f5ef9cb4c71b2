"""Training-state checkpoints: everything needed to continue a run exactly where it stopped.

One ``.safetensors`` file per save, in ``<run>/checkpoints/state/``: tensors (model, optimizer state,
the best weights so far, RNG states) in safetensors; everything else (trainer position, phase,
schedulers, early stopping, best-k bookkeeping, Python RNG) as JSON in the metadata. Nothing needs
pickle. Each file carries a CRC-32 checksum of its tensors and JSON, is written atomically (temp
file, fsync, rename), and only the newest ``keep`` files stay. Saving is split in two so that the
write can leave the training thread: :func:`snapshot_state` copies (on the training thread) and
:func:`write_state` writes (anywhere, see :mod:`ignite_cv.utils.background_writer`). On resume the
newest file whose checksum verifies is used; a truncated or corrupt newer file is skipped with a
one-line warning.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from ignite_cv.utils.atomic import write_safetensors_atomic
from ignite_cv.utils.checksum import CHECKSUM_KEY, CHECKSUMS, tensors_checksum
from ignite_cv.utils.errors import UserError

META_KEY = "ignite_cv_state"
_NAME = re.compile(r"^state_iter=(\d+)\.safetensors$")


def state_filename(global_iteration: int) -> str:
    return f"state_iter={global_iteration:09d}.safetensors"


@dataclass
class TrainingState:
    """Tensors by name and a JSON-able ``meta`` dict; ``path`` is where it was read from."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path | None = None


def _checksum(tensors: Mapping[str, torch.Tensor], meta_json: str, algorithm: str = CHECKSUM_KEY) -> str:
    """A checksum over names, dtypes, shapes, bytes and the JSON: detects a damaged file."""
    return tensors_checksum(tensors, meta_json, algorithm)


@dataclass
class StateSnapshot:
    """A training state frozen for writing: CPU copies of the tensors and the JSON, taken at one moment."""

    tensors: dict[str, torch.Tensor]
    meta_json: str


def snapshot_state(state: TrainingState) -> StateSnapshot:
    """Copy ``state`` so that training may go on changing the originals while the copy is written."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.tensors.items()}
    return StateSnapshot(tensors, json.dumps(state.meta, sort_keys=True, default=_json_default))


def write_state(folder: str | Path, global_iteration: int, snapshot: StateSnapshot, keep: int) -> Path:
    """Write ``snapshot`` atomically as the file for ``global_iteration``; delete all but the newest ``keep``.

    Safe on a writer thread: it touches nothing but the snapshot and the files.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    folder = Path(folder)
    metadata = {META_KEY: snapshot.meta_json, CHECKSUM_KEY: _checksum(snapshot.tensors, snapshot.meta_json)}
    target = folder / state_filename(global_iteration)
    write_safetensors_atomic(target, snapshot.tensors, metadata)
    for old in list_states(folder)[keep:]:
        old.unlink(missing_ok=True)
    return target


def save_state(folder: str | Path, global_iteration: int, state: TrainingState, keep: int) -> Path:
    """Snapshot and write ``state`` now, on this thread."""
    return write_state(folder, global_iteration, snapshot_state(state), keep)


def list_states(folder: str | Path) -> list[Path]:
    """State files in ``folder``, newest (highest iteration) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def read_state(path: str | Path) -> TrainingState:
    """Read and verify one state file; ``UserError`` if it is not a valid ignite_cv training state."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(
            f"{path} is not a readable training state ({str(err).splitlines()[0]})",
            "resume from an ignite_cv run folder",
        ) from None
    algorithm = next((key for key in CHECKSUMS if key in metadata), None)
    if META_KEY not in metadata or algorithm is None:
        raise UserError(f"{path} is not an ignite_cv training state", "resume from an ignite_cv run folder")
    if _checksum(tensors, metadata[META_KEY], algorithm) != metadata[algorithm]:
        raise UserError(f"{path} fails its checksum (damaged)", "resume from an earlier state")
    return TrainingState(tensors, json.loads(metadata[META_KEY]), path)


def read_state_meta(path: str | Path) -> dict[str, Any] | None:
    """The JSON metadata of a state file, from its header only (unverified: a cheap look before the
    full read); None when the file is not a readable state."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get(META_KEY)
        meta = json.loads(text) if text else None
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    return meta if isinstance(meta, dict) else None


def latest_valid_state(folder: str | Path, warn=print) -> TrainingState:
    """The newest state in ``folder`` that reads and verifies; each one skipped is warned about once."""
    states = list_states(folder)
    if not states:
        raise UserError(
            f"no training state in {folder}: the run stopped before its first save", "start it anew"
        )
    for path in states:
        try:
            return read_state(path)
        except UserError as err:
            warn(f"warning: skipping {path.name}: {err}")
    raise UserError(f"every training state in {folder} is damaged", "start a new run")


# --- pieces of a state -----------------------------------------------------------------------------


def optimizer_to_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (per-parameter buffers) and JSON (the rest)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, buffers in state_dict["state"].items():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def optimizer_from_state(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: dict, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[key] = tensor
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    _match_parameter_layouts(optimizer)


def _match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter buffer its parameter's memory layout (strides).

    Files store buffers contiguous, but a ``channels_last`` model's parameters are not: PyTorch's
    fused optimizer kernels pair parameter and buffer elements by position in memory, so a buffer in
    another layout silently updates the wrong weights (``tests/test_training_state.py``).
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            buffers = optimizer.state.get(param, {})
            for key, value in buffers.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    buffers[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def rng_to_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Python, NumPy, torch CPU and CUDA generator states."""
    np_state = np.random.get_state()
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.uint32).view(np.int32).copy()),
    }
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = cuda_state
    version, internal, gauss = random.getstate()
    meta = {"python": [version, list(internal), gauss], "numpy": [np_state[0], *map(_plain, np_state[2:])]}
    return tensors, meta


def rng_from_state(tensors: Mapping[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().view(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    if torch.cuda.is_available():
        names = [f"rng.cuda.{i}" for i in range(torch.cuda.device_count())]
        cuda = [tensors[name] for name in names if name in tensors]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a training state")
