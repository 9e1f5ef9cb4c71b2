"""The cores a process may use."""

from __future__ import annotations

import os

from ignite_cv.utils import devices


def test_available_cpus_counts_the_affinity_mask_not_the_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert devices.available_cpus() == 2


def test_without_affinity_masks_it_is_the_cpu_count_and_at_least_one(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert devices.available_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undetermined"
    assert devices.available_cpus() == 1
