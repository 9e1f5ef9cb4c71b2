"""One model's cost: parameters, MACs, forward latency, throughput, peak memory, top operators.

Latency is timed after warm-up passes (median and 90th percentile of repeats; CUDA events on a GPU,
``perf_counter`` on the CPU); several models are timed in alternating blocks so that all of them see
the same machine load. Throughput is images/s at the median. Peak memory is of one inference forward
(CUDA: ``max_memory_allocated``; CPU: weights plus the peak of the allocations that ``torch.profiler``
records). MACs are multiply-accumulates of one image (torch-pruning's counter). ``tools/profile.py``
and the pruning workflow's before/after table use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ignite_cv.utils.modules import unwrap


@dataclass
class LatencyStats:
    """Forward-pass latency of one batch size, in milliseconds."""

    batch_size: int
    device: str
    warmup: int
    repeats: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch_size / (self.median_ms / 1000.0) if self.median_ms > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "throughput": round(self.throughput, 2)}


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated ``q``-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_of(model: nn.Module, example: torch.Tensor) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else example.device


def _time_once(model: nn.Module, example: torch.Tensor, device: torch.device) -> float:
    """Milliseconds of one forward pass (CUDA events on a GPU, ``perf_counter`` elsewhere)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(example)
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    t0 = time.perf_counter()
    model(example)
    return (time.perf_counter() - t0) * 1000.0


def _stats_of(times: list[float], example: torch.Tensor, device: torch.device, warmup: int) -> LatencyStats:
    return LatencyStats(
        batch_size=int(example.shape[0]),
        device=str(device),
        warmup=warmup,
        repeats=len(times),
        median_ms=statistics.median(times),
        p90_ms=_percentile(times, 0.9),
        mean_ms=statistics.fmean(times),
        min_ms=min(times),
    )


@torch.inference_mode()
def interleaved_latency(
    models: list[nn.Module],
    examples: list[torch.Tensor],
    warmup: int = 5,
    repeats: int = 30,
    budget_s: float = 10.0,
    rounds: int = 5,
) -> list[LatencyStats]:
    """Latency of several models (each with its input), measured in alternating blocks.

    Comparing a model before and after pruning on a shared or throttling machine needs both timed in
    the same minutes: each of ``rounds`` rounds times every model for ``repeats / rounds`` passes.
    ``budget_s`` bounds each model's timed seconds (never fewer than 5 passes each).
    """
    bare = [unwrap(m) for m in models]
    modes = [m.training for m in bare]
    devices = [_device_of(m, x) for m, x in zip(bare, examples)]
    times: list[list[float]] = [[] for _ in bare]
    try:
        for model, example, device in zip(bare, examples, devices):
            model.eval()
            for _ in range(max(warmup, 0)):
                model(example)
            synchronize(device)
        repeats = max(repeats, 1)
        block = max(1, math.ceil(repeats / max(rounds, 1)))
        floor = min(5, repeats)

        def wants_more(t: list[float]) -> bool:
            return len(t) < repeats and not (sum(t) / 1000.0 > budget_s and len(t) >= floor)

        while any(wants_more(t) for t in times):
            for i, t in enumerate(times):
                for _ in range(block):
                    if not wants_more(t):
                        break
                    t.append(_time_once(bare[i], examples[i], devices[i]))
    finally:
        for model, mode in zip(bare, modes):
            model.train(mode)
    return [_stats_of(t, x, d, warmup) for t, x, d in zip(times, examples, devices)]


def measure_latency(
    model: nn.Module, example_input: torch.Tensor, warmup: int = 5, repeats: int = 30, budget_s: float = 10.0
) -> LatencyStats:
    """Time ``model(example_input)`` in eval mode: ``warmup`` untimed passes, then up to ``repeats`` timed.

    Repeats stop early once ``budget_s`` seconds are spent (never fewer than 5), so large batches on a
    small CPU stay bounded. On CUDA each pass is timed with CUDA events around it.
    """
    return interleaved_latency([model], [example_input], warmup, repeats, budget_s, rounds=1)[0]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the C++ side's stderr (Kineto prints profiler_start/stop lines) for the duration."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
    finally:
        os.close(fd)


def _tensor_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


@torch.inference_mode()
def peak_memory(model: nn.Module, example_input: torch.Tensor) -> int:
    """Bytes held at the peak of one inference forward: weights, input and activations.

    CUDA: the allocator's peak. CPU: weights + input + the peak of the allocations made during the
    forward, as ``torch.profiler`` (``profile_memory=True``) records them.
    """
    model = unwrap(model).eval()
    device = _device_of(model, example_input)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        model(example_input)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    from torch.profiler import ProfilerActivity, profile

    model(example_input)  # first-call allocations (workspace caches) are not the model's
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(example_input)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        with quiet_stderr():
            prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text()).get("traceEvents", [])
    totals = [
        e["args"].get("Total Allocated", 0)
        for e in events
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0
    ]
    activations = max(totals, default=0)
    return int(_tensor_bytes(model) + example_input.numel() * example_input.element_size() + activations)


@torch.inference_mode()
def top_operators(
    model: nn.Module, example_input: torch.Tensor, limit: int = 10, passes: int = 3
) -> list[dict]:
    """The ``limit`` operators with the most self time over ``passes`` forwards (after one warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    model = unwrap(model).eval()
    device = _device_of(model, example_input)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    model(example_input)
    with quiet_stderr(), profile(activities=activities) as prof:
        for _ in range(passes):
            model(example_input)
        synchronize(device)
    use_device = device.type == "cuda"
    averages = list(prof.key_averages())

    def self_time(event) -> float:
        return float(event.self_device_time_total if use_device else event.self_cpu_time_total)

    total = sum(self_time(e) for e in averages) or 1.0
    ranked = sorted(averages, key=self_time, reverse=True)[:limit]
    return [
        {
            "name": e.key,
            "calls": int(e.count) // passes,
            "self_ms": round(self_time(e) / 1000.0 / passes, 4),
            "share": round(self_time(e) / total, 4),
        }
        for e in ranked
    ]


@dataclass
class ModelProfile:
    """The measurements :func:`profile_model` takes. Sizes in bytes, MACs for one image."""

    name: str
    input_shape: list[int]
    device: str
    threads: int
    params: int
    trainable: int
    macs: int
    latency: list[LatencyStats] = field(default_factory=list)
    peak_memory: dict[int, int] = field(default_factory=dict)
    top_ops: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["latency"] = [s.to_dict() for s in self.latency]
        out["peak_memory"] = {str(k): v for k, v in self.peak_memory.items()}
        return out


def profile_model(
    model: nn.Module,
    input_shape: tuple[int, int, int] | list[int],
    batch_sizes: tuple[int, ...] = (1, 64),
    device: torch.device | str = "cpu",
    warmup: int = 5,
    repeats: int = 30,
    budget_s: float = 10.0,
    top_ops: int = 0,
    name: str = "model",
) -> ModelProfile:
    """Measure ``model`` for ``(C, H, W)`` inputs at each batch size (see the module docstring)."""
    return profile_models(
        [(name, model, input_shape)], batch_sizes, device, warmup, repeats, budget_s, top_ops
    )[0]


def profile_models(
    entries: list[tuple[str, nn.Module, tuple[int, int, int] | list[int]]],
    batch_sizes: tuple[int, ...] = (1, 64),
    device: torch.device | str = "cpu",
    warmup: int = 5,
    repeats: int = 30,
    budget_s: float = 10.0,
    top_ops: int = 0,
) -> list[ModelProfile]:
    """:func:`profile_model` for ``(name, model, (C, H, W))`` entries, latencies timed interleaved."""
    device = torch.device(device)
    profiles, models, shapes = [], [], []
    for name, model, input_shape in entries:
        model = unwrap(model).to(device).eval()
        shape = [int(s) for s in input_shape]
        macs, _ = count_macs_params(model, torch.randn(1, *shape, device=device))
        params = list(model.parameters())
        profiles.append(
            ModelProfile(
                name=name,
                input_shape=shape,
                device=str(device),
                threads=torch.get_num_threads(),
                params=sum(p.numel() for p in params),
                trainable=sum(p.numel() for p in params if p.requires_grad),
                macs=macs,
            )
        )
        models.append(model)
        shapes.append(shape)
    for batch in dict.fromkeys(batch_sizes):
        examples = [torch.randn(batch, *shape, device=device) for shape in shapes]
        stats = interleaved_latency(models, examples, warmup, repeats, budget_s)
        for profile, model, example, stat in zip(profiles, models, examples, stats):
            profile.latency.append(stat)
            profile.peak_memory[batch] = peak_memory(model, example)
    if top_ops > 0:
        largest = max(batch_sizes)
        for profile, model, shape in zip(profiles, models, shapes):
            profile.top_ops = top_operators(model, torch.randn(largest, *shape, device=device), top_ops)
    return profiles


def count_macs_params(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """(MACs, parameters) of one forward pass of ``example_input`` (torch-pruning's counter, on a copy)."""
    import torch_pruning as tp

    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(unwrap(model), example_input)
    return int(macs), int(params)
