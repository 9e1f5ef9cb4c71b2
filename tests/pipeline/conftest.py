"""Shared helpers of the pipeline tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The shared real data sets (absent on some machines: tests that need them skip).
SHARED_DATA = (REPO / "../shared/data").resolve()
