"""Distributed helpers in one process: the backend choice, the per-process batch, a free port."""

import socket

import pytest

from ignite_cv.utils.distributed import choose_backend, free_port, per_process_batch, spawn_arguments
from ignite_cv.utils.errors import UserError


def test_one_process_needs_no_backend_and_spawning_picks_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert choose_backend(0, "auto", "cpu") is None
    assert choose_backend(2, "auto", "cpu") == "gloo"
    assert choose_backend(2, "nccl", "cpu") == "nccl"


def test_nproc_per_node_inside_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(UserError, match="inside a torchrun job"):
        choose_backend(2, "auto", "cpu")


def test_the_global_batch_is_divided_and_must_cover_the_world():
    assert per_process_batch(128, 4) == 32
    with pytest.raises(UserError, match="smaller than the number of processes"):
        per_process_batch(2, 4)


def test_spawning_uses_a_free_local_port():
    assert spawn_arguments(1) == {}
    arguments = spawn_arguments(2)
    assert (arguments["nproc_per_node"], arguments["master_addr"]) == (2, "127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free_port()))  # free: it can be bound
