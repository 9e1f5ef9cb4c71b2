"""Distributed helpers shared by training, evaluation and the tools: backend choice, ranks, leaving together.

Everything here works unchanged in one process (world size 1), where the collectives are no-ops.
"""

from __future__ import annotations

import os
import socket

import ignite.distributed as idist
import torch

from ignite_cv.utils.errors import UserError


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets ``LOCAL_RANK``)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def is_launcher() -> bool:
    """Whether this process launches the run: a plain process, the parent of ``--nproc-per-node``
    workers, or rank 0 under ``torchrun`` (which sets ``RANK`` before the script starts)."""
    return os.environ.get("RANK", "0") == "0"


def choose_backend(nproc_per_node: int, backend: str, device: str) -> str | None:
    """The process-group backend for ``idist.Parallel``: None in one process, else ``backend``, or with
    ``auto`` NCCL when GPUs are used and gloo otherwise. ``--nproc-per-node`` inside torchrun is refused."""
    if under_torchrun() and nproc_per_node > 0:
        raise UserError(
            f"--nproc-per-node {nproc_per_node} was given inside a torchrun job",
            "let torchrun start the processes (torchrun --nproc_per_node N ...) and drop --nproc-per-node",
        )
    distributed = nproc_per_node > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not distributed:
        return None
    if backend != "auto":
        return backend
    return "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"


def spawn_arguments(nproc_per_node: int) -> dict:
    """``idist.Parallel`` keywords that spawn ``nproc_per_node`` local processes on a free port."""
    if nproc_per_node <= 1:
        return {}
    return {"nproc_per_node": nproc_per_node, "master_addr": "127.0.0.1", "master_port": free_port()}


def free_port() -> int:
    """A free TCP port on this machine (not Ignite's fixed default: runs side by side must not collide)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def per_process_batch(global_batch: int, world: int) -> int:
    """Each process's share of ``--batch-size`` (the global batch)."""
    if global_batch < world:
        raise UserError(
            f"--batch-size {global_batch} is smaller than the number of processes ({world})",
            "raise --batch-size; it is the global batch, divided among processes",
        )
    return global_batch // world


def leave_together() -> None:
    """Hold every rank until all are done (no-op in one process). A rank that tore its gloo process
    group down while rank 0 was still writing the report aborted now and then ("terminate called
    without an active exception", about one torchrun run in 16 on 2 CPU cores)."""
    if idist.get_world_size() > 1:
        idist.barrier()


def say(message: str) -> None:
    """Print ``message`` on rank 0 only (flushed: logs of several processes interleave by line)."""
    if idist.get_rank() == 0:
        print(message, flush=True)
