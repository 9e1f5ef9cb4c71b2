"""The cores a process may use, and when a helper thread has one of its own."""

from __future__ import annotations

import os

import pytest
import torch

from ignite_cv.utils import devices


def test_available_cpus_is_the_affinity_mask():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks on this OS")
    assert devices.available_cpus() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize(
    ("device", "threads", "cores", "spare"),
    [
        ("cpu", 2, 2, False),  # torch's threads take every core: a drawing thread would slow them
        ("cpu", 4, 2, False),
        ("cpu", 1, 2, True),
        ("cpu", 8, 16, True),
        ("cuda", 2, 2, True),  # the model runs on the GPU: the CPU threads mostly wait
    ],
)
def test_a_helper_thread_has_a_core_when_the_gpu_computes_or_torch_leaves_one(
    monkeypatch, device, threads, cores, spare
):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(devices, "available_cpus", lambda: cores)
    assert devices.spare_core(torch.device(device)) is spare
