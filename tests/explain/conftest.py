"""Fixtures for the explain tests: small CPU tensors run on one thread, without subnormal floats."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _small_fast_cpu_ops():
    """One thread: these tensors are too small to share, and on a busy 2-core machine two OpenMP threads
    waiting at barriers made training ~20x slower (100 s instead of 5 s). Subnormals flushed to zero: nets
    trained to near-zero loss produce them, and they run several times slower on CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)
