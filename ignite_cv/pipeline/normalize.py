"""Normalization: chosen once (``resolve_normalization``), stored as a JSON-able spec, rebuilt anywhere.

The spec is the only thing a checkpoint needs to rebuild the normalizer in a fresh process:

* ``{"kind": "meanstd", "mean": [...], "std": [...], "images": n, "fingerprint": "..."}``: the training
  split's exact per-channel statistics (``ignite_cv.data.stats.channel_stats``), in [0, 1] units.
  They are computed from the training split only and cached in ``cache_dir`` as a small JSON file
  named after the split's fingerprint, so a second run on the same split does not read it again.
* ``{"kind": "imagenet", "mean": [...], "std": [...]}``: ImageNet's constants, for pretrained backbones.
* ``{"kind": "gcn", "scale": s, "lambda": λ, "eps": ε, "zca": None | {...}}``: per-image global contrast
  normalization (``ignite_cv.pipeline.gcn``), optionally followed by ZCA whitening fitted on the
  training split; ``zca`` then holds ``eps``, ``mean`` (D values) and ``transform`` (D×D nested lists).
* ``{"kind": "none"}``.

ZCA matrices are large as JSON (D = 3072 gives 9.4 M numbers, ~190 MB of text, above safetensors'
100 MB header limit): :func:`split_spec_tensors` moves them out of the spec into tensors to save beside
the weights, and :func:`join_spec_tensors` puts them back; :func:`build_normalizer` takes either form.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ignite_cv.data.stats import channel_stats
from ignite_cv.pipeline.gcn import GlobalContrastNormalize, check_gcn_params, fit_zca
from ignite_cv.utils.atomic import atomic_path, write_text_atomic
from ignite_cv.utils.errors import UserError

#: ImageNet's per-channel RGB mean and std (torchvision's pretrained weights expect them).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Version of the cache files' layout; a different version is recomputed.
CACHE_VERSION = 1

TrainBatches = Callable[[], Iterable[torch.Tensor]]


def resolve_normalization(
    options: Any,
    channels: int,
    train_batches: TrainBatches | None,
    fingerprint: str | None,
    cache_dir: Path | None,
) -> dict[str, Any]:
    """The normalization spec for ``options.normalize`` (and ``options.gcn_*``, ``options.zca*``).

    Args:
        options: a PipelineOptions or TrainConfig.
        channels: image channels the pipeline will see (1 or 3).
        train_batches: a callable returning an iterable of uint8 ``(N, C, H, W)`` batches of the
            TRAINING split only (never validation or test data); called at most once, and not at all
            when the cache has the answer or the kind needs no statistics. None: there is no training split.
        fingerprint: identifies the training split (``ignite_cv.data.stats.fingerprint_split``);
            None disables the cache.
        cache_dir: where the cache files live (created when missing); None disables the cache.

    Raises:
        UserError: meanstd or ZCA without a training split; GCN or ZCA parameters out of range;
            ImageNet constants for images that are neither grey nor RGB; a constant training channel.
    """
    kind = options.normalize
    zca = bool(getattr(options, "zca", False))
    if zca and kind != "gcn":
        raise UserError(
            f"--zca whitens after GCN, but --normalize is {kind}", "add --normalize gcn or drop --zca"
        )
    if kind == "none":
        return {"kind": "none"}
    if kind == "imagenet":
        mean, std = imagenet_constants(channels)
        return {"kind": "imagenet", "mean": mean, "std": std}
    if kind == "gcn":
        scale, lam, eps = float(options.gcn_scale), float(options.gcn_lambda), float(options.gcn_eps)
        check_gcn_params(scale, lam, eps)
        spec: dict[str, Any] = {"kind": "gcn", "scale": scale, "lambda": lam, "eps": eps, "zca": None}
        if zca:
            spec["zca"] = _resolve_zca(
                options, channels, train_batches, fingerprint, cache_dir, scale, lam, eps
            )
        return spec
    if kind == "meanstd":
        if train_batches is None:
            raise UserError(
                "--normalize meanstd needs the training split's statistics, but there is no training split",
                "use a data set with a training split, or pass --normalize imagenet, gcn or none",
            )
        return _resolve_meanstd(channels, train_batches, fingerprint, cache_dir)
    raise UserError(f"unknown --normalize {kind!r}", "choose one of: meanstd, imagenet, gcn, none")


def imagenet_constants(channels: int) -> tuple[list[float], list[float]]:
    """ImageNet mean/std for RGB; for grey images the average of the three channels' values."""
    if channels == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if channels == 1:
        return [sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]
    raise UserError(f"--normalize imagenet has constants for 1 or 3 channels, not {channels}", "use meanstd")


# -- meanstd ---------------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, stem: str) -> Path:
    return Path(cache_dir) / stem


def _resolve_meanstd(
    channels: int, train_batches: TrainBatches, fingerprint: str | None, cache_dir: Path | None
) -> dict[str, Any]:
    cached = _read_meanstd_cache(cache_dir, fingerprint, channels)
    if cached is not None:
        return cached
    mean, std, images = channel_stats(train_batches())
    if len(mean) != channels:
        raise ValueError(f"the training batches have {len(mean)} channels where {channels} were expected")
    for c, value in enumerate(std):
        if not value > 0:
            raise UserError(
                f"channel {c} of the training split is constant (std 0), --normalize meanstd divides by it",
                "pass --normalize none or gcn",
            )
    spec = {"kind": "meanstd", "mean": mean, "std": std, "images": images, "fingerprint": fingerprint}
    if cache_dir is not None and fingerprint:
        record = {"version": CACHE_VERSION, "channels": channels, **spec}
        _atomic_write_text(_cache_file(cache_dir, _meanstd_name(fingerprint, channels)), json.dumps(record))
    return spec


def _meanstd_name(fingerprint: str, channels: int) -> str:
    return f"meanstd-{channels}ch-{fingerprint[:32]}.json"


def _read_meanstd_cache(
    cache_dir: Path | None, fingerprint: str | None, channels: int
) -> dict[str, Any] | None:
    if cache_dir is None or not fingerprint:
        return None
    path = _cache_file(cache_dir, _meanstd_name(fingerprint, channels))
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        warnings.warn(f"ignoring unreadable statistics cache {path} ({err}); recomputing", stacklevel=3)
        return None
    ok = (
        isinstance(record, dict)
        and record.get("version") == CACHE_VERSION
        and record.get("fingerprint") == fingerprint
        and record.get("channels") == channels
        and _floats(record.get("mean"), channels)
        and _floats(record.get("std"), channels)
        and all(v > 0 for v in record["std"])
    )
    if not ok:
        warnings.warn(f"ignoring stale or damaged statistics cache {path}; recomputing", stacklevel=3)
        return None
    return {k: record[k] for k in ("kind", "mean", "std", "images", "fingerprint")}


def _floats(values: Any, length: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == length
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    )


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (readers never see half a file). A cache that cannot be
    written is only a warning: the run goes on without it."""
    try:
        write_text_atomic(path, text)
    except OSError as err:
        warnings.warn(f"could not write the statistics cache {path} ({err})", stacklevel=3)


# -- ZCA -------------------------------------------------------------------------------------------


def _resolve_zca(
    options: Any,
    channels: int,
    train_batches: TrainBatches | None,
    fingerprint: str | None,
    cache_dir: Path | None,
    scale: float,
    lam: float,
    eps: float,
) -> dict[str, Any]:
    zca_eps = float(getattr(options, "zca_eps", 0.1))
    if not (math.isfinite(zca_eps) and zca_eps > 0):
        raise UserError(f"--zca-eps {zca_eps} must be a positive number", "pass e.g. --zca-eps 0.1")
    if train_batches is None:
        raise UserError(
            "--zca is fitted on the training split, but there is no training split",
            "use a data set with a training split, or drop --zca",
        )
    key = f"{fingerprint}|{channels}|{scale!r}|{lam!r}|{eps!r}|{zca_eps!r}"
    name = None
    if cache_dir is not None and fingerprint:
        name = f"zca-{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"
        cached = _read_zca_cache(_cache_file(cache_dir, name), key)
        if cached is not None:
            mean, transform = cached
            return _zca_spec(mean, transform, zca_eps)
    mean, transform, _ = fit_zca(train_batches(), scale, lam, eps, zca_eps)
    mean, transform = mean.float(), transform.float()
    if name is not None:
        _write_zca_cache(_cache_file(cache_dir, name), key, mean, transform)
    return _zca_spec(mean, transform, zca_eps)


def _zca_spec(mean: torch.Tensor, transform: torch.Tensor, zca_eps: float) -> dict[str, Any]:
    return {"eps": zca_eps, "mean": mean.tolist(), "transform": transform.tolist()}


def _read_zca_cache(path: Path, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("key") != key:
                return None
            return handle.get_tensor("mean"), handle.get_tensor("transform")
    except Exception as err:  # a damaged cache is recomputed, whatever the reader raised
        warnings.warn(f"ignoring unreadable ZCA cache {path} ({err}); refitting", stacklevel=3)
        return None


def _write_zca_cache(path: Path, key: str, mean: torch.Tensor, transform: torch.Tensor) -> None:
    from safetensors.torch import save_file

    tensors = {"mean": mean.contiguous(), "transform": transform.contiguous()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"key": key})
    except OSError as err:
        warnings.warn(f"could not write the ZCA cache {path} ({err})", stacklevel=3)


# -- spec → module ---------------------------------------------------------------------------------


class ChannelNormalize(nn.Module):
    """(x − mean[c]) / std[c] per channel, computed as x·(1/std) + (−mean/std): a multiply into a
    new tensor and an in-place add. (``torch.addcmul`` does the same in one call but, broadcasting
    per-channel constants on a CPU, took 3× as long: 50 against 15 µs on a 128×1×28×28 batch.)

    Its constants are buffers (not saved in state dicts: the spec carries them), so ``.to(device)``
    moves them with the pipeline.
    """

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or not mean:
            raise ValueError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
        if not all(math.isfinite(v) for v in [*mean, *std]) or min(std) <= 0:
            raise ValueError(f"std must be positive and all values finite, got mean {mean}, std {std}")
        mean64 = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        std64 = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.channels = len(mean)
        self.register_buffer("scale", (1.0 / std64).float(), persistent=False)
        self.register_buffer("shift", (-mean64 / std64).float(), persistent=False)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected (N, {self.channels}, H, W) images, got {tuple(x.shape)}")
        return torch.mul(x, self.scale.to(x.dtype)).add_(self.shift.to(x.dtype))


def build_normalizer(spec: dict[str, Any]) -> nn.Module:
    """The deterministic module a spec describes (on the CPU; ``.to(device)`` it with the pipeline)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "none":
        return nn.Identity()
    if kind in ("meanstd", "imagenet"):
        return ChannelNormalize(list(spec["mean"]), list(spec["std"]))
    if kind == "gcn":
        zca = spec.get("zca")
        mean = transform = None
        if zca:
            mean = torch.as_tensor(zca["mean"], dtype=torch.float32)
            transform = torch.as_tensor(zca["transform"], dtype=torch.float32)
        return GlobalContrastNormalize(
            float(spec["scale"]), float(spec["lambda"]), float(spec["eps"]), mean, transform
        )
    raise UserError(
        f"unknown normalization spec {kind!r}",
        "rebuild it with resolve_normalization (or a matching ignite_cv)",
    )


def split_spec_tensors(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Move a spec's ZCA arrays into tensors (``normalize.zca_mean``, ``normalize.zca_transform``), for a
    safetensors file; the returned spec keeps only small JSON. Specs without ZCA come back unchanged."""
    zca = spec.get("zca") if spec.get("kind") == "gcn" else None
    if not zca or "mean" not in zca:
        return dict(spec), {}
    tensors = {
        "normalize.zca_mean": torch.as_tensor(zca["mean"], dtype=torch.float32).contiguous(),
        "normalize.zca_transform": torch.as_tensor(zca["transform"], dtype=torch.float32).contiguous(),
    }
    small = {**spec, "zca": {"eps": zca["eps"], "dim": int(tensors["normalize.zca_mean"].numel())}}
    return small, tensors


def join_spec_tensors(spec: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Inverse of :func:`split_spec_tensors`; the arrays stay tensors (build_normalizer takes them)."""
    zca = spec.get("zca") if spec.get("kind") == "gcn" else None
    if not zca or "mean" in zca:
        return dict(spec)
    missing = [k for k in ("normalize.zca_mean", "normalize.zca_transform") if k not in tensors]
    if missing:
        raise UserError(
            f"the checkpoint lacks the ZCA tensors {', '.join(missing)}", "use the run's own checkpoint"
        )
    full = {
        "eps": zca["eps"],
        "mean": tensors["normalize.zca_mean"],
        "transform": tensors["normalize.zca_transform"],
    }
    return {**spec, "zca": full}
