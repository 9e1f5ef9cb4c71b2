"""The ``--profile`` options of a training run (a recipe's config inherits them)."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.utils.options import option


@dataclass
class ProfileOptions:
    """The ``--profile`` config fields (a recipe's config inherits them)."""

    profile: bool = option(
        False,
        "profile the first training phase: Ignite's time profilers (data loading, step, each handler) and a "
        "torch.profiler trace of a few steps, written to <run>/profile/, with a summary at the end",
    )
    profile_warmup_steps: int = option(
        5, "--profile: training iterations before the torch.profiler trace", minimum=0
    )
    profile_trace_steps: int = option(
        5, "--profile: training iterations the torch.profiler trace records", minimum=1
    )
