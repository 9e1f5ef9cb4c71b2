"""``--device`` names → torch devices, for recipes and tools alike; the cores a process may use."""

from __future__ import annotations

import os

import ignite.distributed as idist
import torch

from ignite_cv.utils.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` (this process's GPU when there is one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    In a distributed job every process uses its own GPU (``idist.device()``), whatever N says.
    """
    if name == "auto":
        return idist.device() if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device", "use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for CUDA but no GPU is visible", "use --device cpu or auto")
    if device.type == "cuda" and idist.get_world_size() > 1:
        return idist.device()
    return device


def available_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
