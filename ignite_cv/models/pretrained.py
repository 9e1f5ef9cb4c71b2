"""Loading pretrained backbone weights: ``--weights imagenet | none | FILE``.

* ``imagenet``: torchvision's ImageNet weights for the architecture (the enum's ``DEFAULT``; another
  version already in the cache is used too), read from ``torch.hub.get_dir()/checkpoints`` — the file
  torchvision itself would use. When it is absent it is downloaded; offline, the run stops before
  training with a message naming ``--weights FILE`` and ``--weights none``. Under several processes,
  call :func:`ensure_imagenet_weights` on rank 0 before a barrier so only one process downloads.
* ``FILE``: a ``.safetensors`` file (parsed by safetensors, never unpickled), a ``.pth``/``.pt`` state
  dict read with ``torch.load(weights_only=True)`` (a file that needs real unpickling is refused), or an
  ignite_cv checkpoint of another run: a ``.safetensors`` whose metadata holds ``"ignite_cv"`` (a JSON
  string with ``"arch"``, ``"arch_args"``, ``"num_classes"`` …); one of another architecture is refused.

In every case the head is replaced: head keys of the file (each architecture declares them as
``head_key_prefixes``: ``head.*`` and torchvision's ``fc.*`` or ``classifier.6.*``, TinyVGG's
``classifier.*``, the MLP's last Linear) are dropped and the model keeps its new head, so a checkpoint of
10 classes starts a run of 2. An ignite_cv checkpoint's checksum is verified, and weights with a NaN or
infinity are refused. Keys may carry ``module.`` (DDP),
``model.`` or ``_orig_mod.`` (``torch.compile``) prefixes. The first conv of a grey model (1 input
channel) gets the RGB kernels' sum over the colour axis: their average scaled by 3, so that a grey
image gives the same response as the same image copied into R, G and B (a plain average would divide
conv1's output by 3, which frozen BatchNorm statistics and AlexNet's bias-ReLU stack do not undo).
"""

from __future__ import annotations

import json
import pickle
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from ignite_cv.utils.checksum import verify_checksum
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

#: Architectures with torchvision ImageNet weights.
IMAGENET_ARCHS = ("resnet18", "resnet34", "resnet50", "alexnet")
#: Metadata key of an ignite_cv checkpoint in its .safetensors header.
CHECKPOINT_METADATA_KEY = "ignite_cv"
#: Prefixes that wrappers add to state-dict keys: DDP, a "model." namespace, torch.compile.
KEY_PREFIXES = ("module.", "model.", "_orig_mod.")
#: Seconds a download may wait on the network before it counts as offline.
DOWNLOAD_TIMEOUT_S = 30.0


def _weights_enum(arch: str) -> Any:
    if arch not in IMAGENET_ARCHS:
        raise UserError(
            f"there are no ImageNet weights for {arch}",
            f"use one of {', '.join(IMAGENET_ARCHS)} (alexnet needs --image-size 63 or more), "
            "or pass --weights FILE or --weights none",
        )
    import torchvision

    return torchvision.models.get_model_weights(arch)


def imagenet_weights_path(arch: str) -> Path:
    """Where torch hub caches ``arch``'s default ImageNet weights (the file may not exist)."""
    url = _weights_enum(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _cached_imagenet_weights(arch: str) -> tuple[Path, str] | None:
    enum = _weights_enum(arch)
    versions = [enum.DEFAULT] + [w for w in enum if w is not enum.DEFAULT]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for version in versions:
        path = folder / version.url.rsplit("/", 1)[-1]
        if path.is_file():
            return path, f"{enum.__name__}.{version.name}"
    return None


def _download(url: str, dst: Path) -> None:
    """Download ``url`` to ``dst`` with torch hub's checks (hash prefix in the name, atomic rename)."""
    match = re.search(r"-([a-f0-9]+)\.", dst.name)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, str(dst), match.group(1) if match else None, progress=True)
    finally:
        socket.setdefaulttimeout(previous)


def ensure_imagenet_weights(arch: str) -> tuple[Path, str]:
    """(path, version name) of ``arch``'s ImageNet weights, downloading them if the cache lacks them."""
    cached = _cached_imagenet_weights(arch)
    if cached is not None:
        return cached
    default = _weights_enum(arch).DEFAULT
    path = imagenet_weights_path(arch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _download(default.url, path)
    except Exception as err:  # offline, proxy, disk full, hash mismatch: all end the same way
        raise UserError(
            f"ImageNet weights for {arch} are not in the torch hub cache ({path}) and cannot be downloaded "
            f"({type(err).__name__}: {str(err)[:120]})",
            "pass --weights FILE (a .safetensors or .pth state dict) or --weights none",
        ) from None
    return path, f"{type(default).__name__}.{default.name}"


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any] | None:
    """The ``"ignite_cv"`` metadata of a .safetensors checkpoint, or None for a plain .safetensors."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:
        raise UserError(
            f"{path} is not a valid .safetensors file ({type(err).__name__}: {str(err)[:120]})",
            "pass a .safetensors file written by safetensors or ignite_cv, or a .pth state dict",
        ) from None
    if CHECKPOINT_METADATA_KEY not in metadata:
        return None
    try:
        info = json.loads(metadata[CHECKPOINT_METADATA_KEY])
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict):
        raise UserError(
            f"{path} has a damaged ignite_cv metadata entry", "pass a checkpoint written by ignite_cv"
        )
    return info


def _read_pth(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{path} is not a plain state dict (it would need unpickling)",
            "re-save it with torch.save(model.state_dict()) or as .safetensors",
        ) from None
    except Exception as err:
        raise UserError(
            f"{path} cannot be read as a PyTorch state dict ({type(err).__name__}: {str(err)[:120]})",
            "pass a .pth saved with torch.save(model.state_dict()) or a .safetensors file",
        ) from None
    # Training checkpoints nest the model's state dict: {"model": {...}, "optimizer": {...}, ...}.
    for key in ("state_dict", "model_state_dict", "model", "module"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path} holds a {type(obj).__name__}, not a state dict",
            "re-save it with torch.save(model.state_dict()) or as .safetensors",
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(
            f"{path} holds no tensors", "pass a state dict saved with torch.save(model.state_dict())"
        )
    return tensors


def read_weights_file(path: str | Path, arch: str) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a weights FILE and a short description of it; never unpickles anything."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"weights file {path} does not exist",
            "pass --weights imagenet, --weights none, or the path of a .safetensors or .pth file",
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        info = read_checkpoint_metadata(path)
        if info is not None and info.get("arch") != arch:
            other = info.get("arch")
            raise UserError(
                f"{path} is a checkpoint of {other}, not {arch}",
                f"pass --model {other} to start from it, or a weights file of a {arch}",
            )
        try:
            tensors = safetensors.torch.load_file(str(path), device="cpu")
            with safetensors.safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
        except Exception as err:
            raise UserError(
                f"{path} is not a valid .safetensors file ({type(err).__name__}: {str(err)[:120]})",
                "pass a .safetensors file written by safetensors or ignite_cv, or a .pth state dict",
            ) from None
        if verify_checksum(tensors, metadata.get(CHECKPOINT_METADATA_KEY, ""), metadata) is False:
            raise UserError(
                f"{path} fails its checksum: the file is damaged",
                "pass another checkpoint of that run (its checkpoints/ folder)",
            )
        if info is None:
            return tensors, str(path)
        classes = info.get("num_classes") or len(info.get("class_names") or [])
        detail = f", {classes} classes" if classes else ""
        return tensors, f"{path} (ignite_cv checkpoint of {arch}{detail})"
    if suffix in (".pth", ".pt"):
        return _read_pth(path), str(path)
    raise UserError(
        f"weights file {path} has an unknown type {suffix or '(no suffix)'}",
        "pass a .safetensors file or a .pth/.pt state dict saved with torch.save(model.state_dict())",
    )


def _strip_prefixes(source: dict[str, torch.Tensor], target_keys: set[str]) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes while doing so makes more keys match the model's."""
    best = source
    improved = True
    while improved:
        improved = False
        for prefix in KEY_PREFIXES:
            stripped = {k[len(prefix) :]: v for k, v in best.items() if k.startswith(prefix)}
            if stripped and len(stripped.keys() & target_keys) > len(best.keys() & target_keys):
                best, improved = stripped, True
    return best


def _short_list(keys: list[str], limit: int = 3) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_backbone_state(
    model: nn.Module, source: dict[str, torch.Tensor], arch: str, in_channels: int, origin: str
) -> str:
    """Copy ``source``'s backbone tensors into ``model`` (head dropped); return a one-line report."""
    inner = unwrap(model)
    target = inner.state_dict()
    head_prefixes = tuple(getattr(inner, "head_key_prefixes", ("head.",)))
    stem_key = getattr(inner, "stem_conv_key", None)
    source = _strip_prefixes(source, set(target))
    dropped = [k for k in source if k.startswith(head_prefixes)]
    body = {k: v for k, v in source.items() if not k.startswith(head_prefixes)}
    backbone_keys = [k for k in target if not k.startswith(head_prefixes)]
    fix = f"pass weights of a {arch} with {in_channels} input channel(s), or --weights none"

    to_load: dict[str, torch.Tensor] = {}
    folded = False
    for key in backbone_keys:
        if key not in body:
            continue
        value, want = body[key], target[key].shape
        if value.shape != want:
            grey_from_rgb = (
                key == stem_key
                and in_channels == 1
                and value.ndim == 4
                and value.shape[1] == 3
                and (value.shape[0], *value.shape[2:]) == (want[0], *want[2:])
            )
            if not grey_from_rgb:
                raise UserError(
                    f"weights {origin} do not fit {arch}: {key} has shape {tuple(value.shape)} in the file "
                    f"but {tuple(want)} in the model",
                    fix,
                )
            value = value.float().sum(dim=1, keepdim=True)
            folded = True
        to_load[key] = value
    if not to_load:
        raise UserError(
            f"weights {origin} share no tensor names with {arch} (the file's keys look like "
            f"{_short_list(sorted(body or source), 2)})",
            fix,
        )
    not_finite = [k for k, v in to_load.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if not_finite:
        raise UserError(
            f"weights {origin} hold NaN or infinite values ({_short_list(not_finite)})",
            "pass weights of a model that trained without diverging, or --weights none",
        )
    inner.load_state_dict(to_load, strict=False)

    missing = [k for k in backbone_keys if k not in to_load and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in body if k not in target]
    parts = [
        f"weights {origin}: loaded {len(to_load)}/{len(backbone_keys)} backbone tensors",
        f"{stem_key} summed over RGB for 1 input channel" if folded else "",
        f"head replaced ({len(dropped)} head tensors of the file dropped)",
        f"missing: {_short_list(missing)}",
        f"unexpected: {_short_list(unexpected)}",
    ]
    return "; ".join(p for p in parts if p)


def load_pretrained(model: nn.Module, arch: str, weights: str, in_channels: int) -> str:
    """Apply ``--weights`` to a freshly built ``model`` of ``arch``; return a one-line report."""
    choice = weights.strip()
    if choice.lower() == "none" or not choice:
        return "weights none: random initialisation"
    if choice.lower() == "imagenet":
        path, version = ensure_imagenet_weights(arch)
        state = _read_pth(path)
        return load_backbone_state(model, state, arch, in_channels, f"ImageNet {version} ({path})")
    state, origin = read_weights_file(choice, arch)
    return load_backbone_state(model, state, arch, in_channels, origin)
