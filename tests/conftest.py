"""Shared test fixtures: repository paths, the shared real data (skipped when absent), tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# Keep the suite fast and repeatable on a 2-core machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the clone; CI has it)")
    return path


@pytest.fixture
def tiny_args(tmp_path: Path) -> list[str]:
    """CLI flags for a fast run on digits that writes into tmp_path."""
    return ["--output-dir", str(tmp_path / "runs"), "--workers", "0", "--log-every", "5"]
