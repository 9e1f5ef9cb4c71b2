"""Where time and memory go: one model's cost (``tools/profile.py``) and a training run's (``--profile``).

Model measurement (:func:`profile_model`): parameters, MACs (torch-pruning's counter, one image),
forward latency at given batch sizes (warm-up passes, then repeats; median and 90th percentile; CUDA
events on a GPU, ``perf_counter`` on the CPU), throughput (images/s at the median), peak memory of one
inference forward (CUDA: ``max_memory_allocated``; CPU: weights plus the peak of the allocations that
``torch.profiler`` records during the forward) and optionally the top operators by self time.

Run profiling (:func:`attach_run_profiler`): Ignite's ``BasicTimeProfiler`` (data loading, the step,
handlers per event) and ``HandlersTimeProfiler`` (each handler by name) on the trainer and the
evaluator, plus a ``torch.profiler`` trace of a few training steps after warm-up (TensorBoard's profiler
plugin or ``chrome://tracing`` / Perfetto open it). The evaluator runs once per epoch; Ignite's
profilers reset at every run, so the subclasses here add the runs up. Everything goes to
``<run>/profile/``: ``timing.md`` (tables), ``profile.json``, ``summary.txt`` and ``trace/``.
On a GPU each step is followed by a synchronisation while profiling, so the step's time includes its
kernels instead of leaking into whatever waits next.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import BasicTimeProfiler, HandlersTimeProfiler
from torch import nn

from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.options import option
from ignite_cv.utils.text import markdown_table

# ----------------------------------------------------------------------------------------------
# model measurement


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


def _synchronize(device: torch.device) -> None:
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
            _synchronize(device)
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
        _synchronize(device)
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
    from ignite_cv.pruning import count_macs_params

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


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def profile_rows(profile: ModelProfile) -> list[tuple[str, str, float]]:
    """``(label, text, number)`` rows; the number feeds comparisons."""
    rows = [
        ("parameters", f"{profile.params:,}", float(profile.params)),
        ("trainable parameters", f"{profile.trainable:,}", float(profile.trainable)),
        ("MACs (1 image)", f"{profile.macs:,}", float(profile.macs)),
    ]
    for stats in profile.latency:
        b = stats.batch_size
        rows += [
            (f"latency batch {b}, median (ms)", f"{stats.median_ms:.3f}", stats.median_ms),
            (f"latency batch {b}, p90 (ms)", f"{stats.p90_ms:.3f}", stats.p90_ms),
            (f"throughput batch {b} (img/s)", f"{stats.throughput:,.1f}", stats.throughput),
            (
                f"peak memory batch {b}",
                _mib(profile.peak_memory.get(b, 0)),
                float(profile.peak_memory.get(b, 0)),
            ),
        ]
    return rows


def format_profile(profile: ModelProfile) -> str:
    """A markdown table of ``profile`` (and its top operators when measured)."""
    title = (
        f"{profile.name}: input {'×'.join(map(str, profile.input_shape))}, {profile.device}, "
        f"{profile.threads} threads"
    )
    repeats = ", ".join(f"batch {s.batch_size}: {s.repeats} repeats" for s in profile.latency)
    text = f"{title} ({repeats})\n\n" + markdown_table(
        ["", "value"], [[r[0], r[1]] for r in profile_rows(profile)]
    )
    if profile.top_ops:
        ops = [
            [o["name"], str(o["calls"]), f"{o['self_ms']:.3f}", f"{100 * o['share']:.1f}%"]
            for o in profile.top_ops
        ]
        text += "\nTop operators by self time (one forward at the largest batch)\n\n" + markdown_table(
            ["operator", "calls", "self ms", "share"], ops
        )
    return text


def format_comparison(a: ModelProfile, b: ModelProfile) -> str:
    """Side-by-side markdown table of two profiles, with ``b / a`` ratios."""
    rows_a = {label: (text, value) for label, text, value in profile_rows(a)}
    rows = []
    for label, text_b, value_b in profile_rows(b):
        if label not in rows_a:
            continue
        text_a, value_a = rows_a[label]
        ratio = f"{value_b / value_a:.3f}×" if value_a else "-"
        rows.append([label, text_a, text_b, ratio])
    header = ["", a.name, b.name, "second / first"]
    return (
        f"{a.device}, {a.threads} threads; input {'×'.join(map(str, a.input_shape))} vs "
        f"{'×'.join(map(str, b.input_shape))}\n\n" + markdown_table(header, rows)
    )


# ----------------------------------------------------------------------------------------------
# run profiling


class _AccumulatingBasicTimeProfiler(BasicTimeProfiler):
    """BasicTimeProfiler that adds up several runs of the same engine (it resets on every run)."""

    def __init__(self) -> None:
        super().__init__()
        self._past: list[tuple[torch.Tensor, torch.Tensor, dict]] = []

    def _reset(self, num_epochs: int, total_num_iters: int) -> None:
        self._fold()
        super()._reset(num_epochs, total_num_iters)

    def _fold(self) -> None:
        if self.event_handlers_times:
            self._past.append((self.dataflow_times, self.processing_times, dict(self.event_handlers_times)))
            self.event_handlers_times = {}

    def merged(self) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """All runs' (dataflow, processing, {event: handler times}), concatenated."""
        self._fold()
        if not self._past:
            return torch.zeros(0), torch.zeros(0), {}
        dataflow = torch.cat([p[0] for p in self._past])
        processing = torch.cat([p[1] for p in self._past])
        events: dict = {}
        for _, _, per_event in self._past:
            for event, times in per_event.items():
                events[event] = torch.cat([events[event], times]) if event in events else times
        return dataflow, processing, events


class _AccumulatingHandlersTimeProfiler(HandlersTimeProfiler):
    """HandlersTimeProfiler over several runs: adds them up, and fixes two problems of Ignite 0.5's version.

    It re-adds its processing/dataflow timer handlers at every run and never removes them, so a second
    run of the same engine would record every step twice: they are removed after each run. And it reads
    every event's handler list from the engine's ``defaultdict``, which creates an empty
    ``EXCEPTION_RAISED`` entry; the Engine then believes an exception handler exists and swallows every
    exception of the run: empty entries are deleted again. (The class name keeps "HandlersTimeProfiler."
    in its methods' names, which is how Ignite recognises its own handlers.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.total_processing: list[float] = []
        self.total_dataflow: list[float] = []
        self.total_handlers: dict[tuple[str, str], list[float]] = {}

    def _reset(self, event_handlers_names) -> None:
        self._fold()
        super()._reset(event_handlers_names)

    def _as_first_started(self, engine: Engine) -> None:
        super()._as_first_started(engine)
        for event in [e for e, handlers in engine._event_handlers.items() if not handlers]:
            del engine._event_handlers[event]

    def _fold(self) -> None:
        self.total_processing += self.processing_times
        self.total_dataflow += self.dataflow_times
        for event, handlers in self.event_handlers_times.items():
            for name, times in handlers.items():
                key = (name, getattr(event, "name", str(event)))
                self.total_handlers.setdefault(key, []).extend(times)
        self.processing_times, self.dataflow_times, self.event_handlers_times = [], [], {}

    def _detach_profiler_handlers(self, engine: Engine) -> None:
        super()._detach_profiler_handlers(engine)
        for handler, event in (
            (self._processing_timer.reset, Events.ITERATION_STARTED),
            (self._timeit_processing, Events.ITERATION_COMPLETED),
            (self._dataflow_timer.reset, Events.GET_BATCH_STARTED),
            (self._timeit_dataflow, Events.GET_BATCH_COMPLETED),
            (self._detach_profiler_handlers, Events.COMPLETED),
        ):
            if engine.has_event_handler(handler, event):
                engine.remove_event_handler(handler, event)

    def merged(self) -> tuple[list[float], list[float], dict[tuple[str, str], list[float]]]:
        self._fold()
        return self.total_dataflow, self.total_processing, self.total_handlers


class _TraceWindow:
    """A ``torch.profiler`` trace of ``active`` training iterations after ``skip`` warm-up iterations."""

    def __init__(self, out_dir: Path, skip: int, active: int, device: torch.device) -> None:
        self.out_dir = out_dir
        self.skip = skip
        self.active = active
        self.device = device
        self.prof = None
        self.first = self.last = 0
        self.files: list[str] = []
        self._range = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.plan)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self.data_started)
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self.close_range)
        engine.add_event_handler(Events.ITERATION_STARTED, self.step_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.step_completed)
        engine.add_event_handler(Events.COMPLETED, self.stop)

    def plan(self, engine: Engine) -> None:
        done = engine.state.iteration  # > 0 when a run resumes
        total = (engine.state.epoch_length or 0) * (engine.state.max_epochs or 0) - done
        if total <= 0:  # unknown length: trust the request
            active, skip = max(1, self.active), self.skip
        else:  # a short run still gets a trace, as late as it fits
            active = max(1, min(self.active, total))
            skip = min(self.skip, total - active)
        self.first = done + skip + 1  # 1-based iterations traced
        self.last = self.first + active - 1

    def data_started(self, engine: Engine) -> None:
        if self.prof is None and engine.state.iteration + 1 == self.first and not self.files:
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + (
                [ProfilerActivity.CUDA] if self.device.type == "cuda" else []
            )
            self.prof = profile(activities=activities, record_shapes=True)
            with quiet_stderr():
                self.prof.start()
        self._open_range("ignite_cv/data_loading")

    def step_started(self, engine: Engine) -> None:
        self._open_range("ignite_cv/iteration")

    def step_completed(self, engine: Engine) -> None:
        self.close_range(engine)
        if self.prof is not None and engine.state.iteration >= self.last:
            self.stop(engine)

    def _open_range(self, name: str) -> None:
        if self.prof is not None:
            self._range = torch.autograd.profiler.record_function(name)
            self._range.__enter__()

    def close_range(self, engine: Engine | None = None) -> None:
        if self._range is not None:
            self._range.__exit__(None, None, None)
            self._range = None

    def stop(self, engine: Engine | None = None) -> None:
        if self.prof is None:
            return
        from torch.profiler import tensorboard_trace_handler

        self.close_range()
        _synchronize(self.device)
        with quiet_stderr():
            self.prof.stop()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            tensorboard_trace_handler(str(self.out_dir), worker_name="trainer")(self.prof)
        self.files = sorted(str(p) for p in self.out_dir.glob("*.pt.trace.json*"))
        sort_key = "self_device_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        table = self.prof.key_averages().table(sort_by=sort_key, row_limit=20)
        (self.out_dir / "top_ops.txt").write_text(
            f"torch.profiler, training iterations {self.first}-{self.last}\n{table}\n"
        )
        self.prof = None


class _SyncedStep:
    """Wraps an engine's process function with a device synchronisation, so a step's time is its real time."""

    def __init__(self, engine: Engine, device: torch.device) -> None:
        self.engine = engine
        self.original = engine._process_function
        self.device = device

        def synced(engine_: Engine, batch: Any) -> Any:
            output = self.original(engine_, batch)
            torch.cuda.synchronize(device)
            return output

        engine._process_function = synced

    def restore(self) -> None:
        self.engine._process_function = self.original


#: Data loading at or above this share of the iteration time (data + step) gets its own advice.
DATA_SHARE_ADVICE = 0.25
_INTERNAL = ("BasicTimeProfiler.", "HandlersTimeProfiler.", "_TraceWindow.", "RunProfiler.")


@dataclass
class ProfileOptions:
    """The ``--profile`` config fields (a recipe's config inherits them)."""

    profile: bool = option(
        False,
        "profile the first training phase: Ignite's time profilers (data loading, step, each handler) and a "
        "torch.profiler trace of a few steps, written to <run>/profile/, with a summary at the end",
    )
    profile_warmup_steps: int = option(5, "--profile: training iterations before the torch.profiler trace")
    profile_trace_steps: int = option(5, "--profile: training iterations the torch.profiler trace records")


class RunProfiler:
    """Profiles a trainer and its evaluator; :meth:`finish` writes ``<run_dir>/profile/`` and summarises.

    Attach it to the first phase's trainer: the tables then cover that phase's epochs and the
    validations run inside them.
    """

    def __init__(
        self,
        run_dir: str | Path,
        device: torch.device | str | None = None,
        warmup_steps: int = 5,
        trace_steps: int = 5,
        say: Callable[[str], None] | None = print,
    ) -> None:
        self.out_dir = Path(run_dir) / "profile"
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.say = say
        self.trainer_basic = _AccumulatingBasicTimeProfiler()
        self.trainer_handlers = _AccumulatingHandlersTimeProfiler()
        self.eval_basic = _AccumulatingBasicTimeProfiler()
        self.eval_handlers = _AccumulatingHandlersTimeProfiler()
        self.trace = _TraceWindow(self.out_dir / "trace", warmup_steps, trace_steps, self.device)
        self.evaluator: Engine | None = None
        self.trainer: Engine | None = None
        self.synced: list[_SyncedStep] = []
        self.synced_devices: list[str] = []
        self.wall = {"start": 0.0, "end": 0.0, "eval_runs": 0}

    def attach(self, trainer: Engine, evaluator: Engine | None) -> None:
        self.trainer, self.evaluator = trainer, evaluator
        # Basic first, Handlers second: Handlers' start runs first and wraps only user handlers.
        self.trainer_basic.attach(trainer)
        self.trainer_handlers.attach(trainer)
        self.trace.attach(trainer)
        trainer.add_event_handler(Events.STARTED, lambda _: self.wall.update(start=time.perf_counter()))
        trainer.add_event_handler(Events.COMPLETED, lambda _: self.wall.update(end=time.perf_counter()))
        if evaluator is not None:
            self.eval_basic.attach(evaluator)
            self.eval_handlers.attach(evaluator)
        if self.device.type == "cuda":
            self.synced = [_SyncedStep(e, self.device) for e in (trainer, evaluator) if e is not None]
            self.synced_devices = [str(self.device)]

    def detach(self) -> None:
        """Remove the evaluator's profilers (it outlives the phase) and the step synchronisation."""
        for synced in self.synced:
            synced.restore()
        self.synced = []
        if self.evaluator is not None:
            for profiler in (self.eval_basic, self.eval_handlers):
                if self.evaluator.has_event_handler(profiler._as_first_started, Events.STARTED):
                    self.evaluator.remove_event_handler(profiler._as_first_started, Events.STARTED)
        self.trace.stop()

    def results(self) -> dict[str, Any]:
        """Aggregated times in seconds: trainer and evaluator data/step/handlers, and the summary figures."""
        t_data, t_step, t_handlers = self.trainer_handlers.merged()
        e_data, e_step, e_handlers = self.eval_handlers.merged()
        b_data, b_step, b_events = self.trainer_basic.merged()
        eb_data, eb_step, eb_events = self.eval_basic.merged()
        trainer = _engine_section(t_data, t_step, t_handlers)
        evaluator = _engine_section(e_data, e_step, e_handlers)
        validation = evaluator["total_s"]
        handler_total = trainer["handlers_s"]
        # The evaluator runs inside a trainer handler (EPOCH_COMPLETED): that handler holds validation.
        container = None
        if validation > 0:
            candidates = [h for h in trainer["handlers"] if h["total_s"] >= 0.9 * validation]
            container = min(candidates, key=lambda h: h["total_s"], default=None)
        others = [h for h in trainer["handlers"] if h is not container]
        if container is not None:
            container["name"] += " [runs validation]"
        other_s = max(handler_total - validation, 0.0)
        total = trainer["data_s"] + trainer["step_s"] + handler_total
        parts = {
            "data loading": trainer["data_s"],
            "training step": trainer["step_s"],
            "validation": validation,
            "other handlers": other_s,
        }
        return {
            "trainer": trainer,
            "evaluator": evaluator,
            "trainer_events": _event_section(b_data, b_step, b_events),
            "evaluator_events": _event_section(eb_data, eb_step, eb_events),
            "parts_s": parts,
            "total_s": total,
            "wall_s": max(self.wall["end"] - self.wall["start"], 0.0),
            "iterations": len(t_step),
            "validation_handler": container["name"] if container else None,
            "gpu_synchronized": bool(self.synced_devices),
            "largest_other_handler": max(others, key=lambda h: h["total_s"], default=None),
            "device": str(self.device),
            "trace_files": self.trace.files,
            "trace_iterations": f"{self.trace.first}-{self.trace.last}",
        }

    def finish(self) -> dict[str, Any]:
        """Detach, write ``profile/`` (timing.md, profile.json, summary.txt), print and return the summary."""
        self.detach()
        results = self.results()
        paragraph = summarize(results)
        results["summary"] = paragraph
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "timing.md").write_text(timing_tables(results))
        (self.out_dir / "profile.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (self.out_dir / "summary.txt").write_text(paragraph + "\n")
        if self.say is not None:
            self.say(paragraph)
        return {
            "summary": paragraph,
            "dir": str(self.out_dir),
            "parts_s": results["parts_s"],
            "largest": largest_cost(results)[0],
            "trace_files": results["trace_files"],
        }


def attach_run_profiler(
    trainer: Engine,
    evaluator: Engine | None,
    run_dir: str | Path,
    device: torch.device | str | None = None,
    warmup_steps: int = 5,
    trace_steps: int = 5,
    say: Callable[[str], None] | None = print,
) -> Callable[[], dict[str, Any]]:
    """Attach the run profilers (module docstring); returns ``finish()``, to call after ``trainer.run``.

    ``finish()`` writes ``<run_dir>/profile/``, prints the one-paragraph summary with ``say`` and returns
    ``{"summary", "dir", "parts_s", "largest", "trace_files"}`` for the run's summary.json.
    """
    profiler = RunProfiler(run_dir, device, warmup_steps, trace_steps, say)
    profiler.attach(trainer, evaluator)
    return profiler.finish


def _stats(times: list[float] | torch.Tensor) -> dict[str, float]:
    values = [float(t) for t in times if float(t) > 0]
    if not values:
        return {"total_s": 0.0, "calls": 0, "mean_ms": 0.0, "max_ms": 0.0}
    return {
        "total_s": sum(values),
        "calls": len(values),
        "mean_ms": 1000 * sum(values) / len(values),
        "max_ms": 1000 * max(values),
    }


def _engine_section(
    data: list[float], step: list[float], handlers: dict[tuple[str, str], list[float]]
) -> dict:
    rows = []
    for (name, event), times in handlers.items():
        if any(tag in name for tag in _INTERNAL):
            continue
        stats = _stats(times)
        if stats["calls"]:
            rows.append({"name": name, "event": event, **stats})
    rows.sort(key=lambda r: r["total_s"], reverse=True)
    data_stats, step_stats = _stats(data), _stats(step)
    handlers_s = sum(r["total_s"] for r in rows)
    return {
        "data": data_stats,
        "step": step_stats,
        "handlers": rows,
        "data_s": data_stats["total_s"],
        "step_s": step_stats["total_s"],
        "handlers_s": handlers_s,
        "total_s": data_stats["total_s"] + step_stats["total_s"] + handlers_s,
    }


def _event_section(data: torch.Tensor, step: torch.Tensor, events: dict) -> dict:
    out = {"data": _stats(data), "step": _stats(step)}
    for event, times in events.items():
        out[f"handlers on {getattr(event, 'name', str(event))}"] = _stats(times)
    return out


def largest_cost(results: dict[str, Any]) -> tuple[str, float]:
    """The largest of data loading, training step, validation and other handlers, and its share."""
    parts = results["parts_s"]
    total = sum(parts.values()) or 1.0
    name = max(parts, key=parts.get)
    return name, parts[name] / total


def summarize(results: dict[str, Any]) -> str:
    """The one-paragraph summary: shares of the training time, the largest cost and what to do about it."""
    parts = results["parts_s"]
    total = sum(parts.values())
    if total <= 0 or results["iterations"] == 0:
        return "profile: no training iteration was recorded, so there is nothing to summarise."
    iterations = results["iterations"]
    trainer = results["trainer"]
    share = {k: v / total for k, v in parts.items()}
    data_of_iteration = parts["data loading"] / max(parts["data loading"] + parts["training step"], 1e-12)
    largest, _ = largest_cost(results)
    handler = results["largest_other_handler"]
    handler_text = (
        f" (largest: {handler['name']} on {handler['event']}, {handler['total_s']:.2f} s)"
        if handler and parts["other handlers"] > 0
        else ""
    )
    evaluations = results["evaluator"]["step"]["calls"]
    text = (
        f"profile: {total:.1f} s of training over {iterations} iterations: "
        f"training step {100 * share['training step']:.0f}% ({trainer['step']['mean_ms']:.1f} ms/iteration), "
        f"data loading {100 * share['data loading']:.0f}% ({trainer['data']['mean_ms']:.1f} ms/batch, "
        f"{100 * data_of_iteration:.0f}% of step time), "
        f"validation {100 * share['validation']:.0f}% ({evaluations} batches), "
        f"other handlers {100 * share['other handlers']:.0f}%{handler_text}. "
        f"Largest cost: {largest}"
    )
    advice = []
    if data_of_iteration >= DATA_SHARE_ADVICE or largest == "data loading":
        advice.append(
            f"data loading is {100 * data_of_iteration:.0f}% of step time: raise --workers or use "
            "--data-on-device yes"
        )
    if largest == "training step":
        if results["device"].startswith("cuda"):
            advice.append(
                "the model's compute dominates: try --amp bf16, --channels-last or a larger "
                "--batch-size, or make the model cheaper with tools/prune.py"
            )
        else:
            advice.append(
                "the model's compute dominates on the CPU: use a GPU (--device cuda), a smaller "
                "model, or make it cheaper with tools/prune.py"
            )
    elif largest == "validation":
        advice.append(
            "validation costs more than training: use a smaller --val-fraction or a larger "
            "--batch-size for evaluation"
        )
    elif largest == "other handlers" and handler:
        advice.append(
            f"handler {handler['name']} ({handler['event']}) costs the most: make it run less often "
            "(e.g. --log-every, --image-grid-every)"
        )
    text += (": " + "; ".join(advice) if advice else "") + "."
    if results.get("gpu_synchronized"):
        text += (
            " (While profiling, the GPU was synchronised after each step so steps carry their kernel time.)"
        )
    if results["trace_files"]:
        trace = Path(results["trace_files"][0])
        profile_dir = trace.parent.parent
        text += (
            f" Tables in {profile_dir}/timing.md; trace of iterations {results['trace_iterations']}: "
            f"tensorboard --logdir {profile_dir} (torch-tb-profiler) or open {trace} in chrome://tracing or "
            "ui.perfetto.dev."
        )
    return text


def timing_tables(results: dict[str, Any]) -> str:
    """``timing.md``: the breakdown, then each engine's data/step/handler table (Ignite's profilers)."""
    total = results["total_s"] or 1.0
    out = [
        "# Training profile\n",
        results.get("summary", ""),
        "",
        "## Breakdown (seconds; validation runs inside a trainer handler)\n",
    ]
    out.append(
        markdown_table(
            ["part", "seconds", "share"],
            [[k, f"{v:.3f}", f"{100 * v / total:.1f}%"] for k, v in results["parts_s"].items()],
        )
    )
    for title, key in (("Trainer", "trainer"), ("Evaluator (all validation runs)", "evaluator")):
        section = results[key]
        rows = [
            ["data loading (dataflow)", "-", *_cells(section["data"], total)],
            ["step (processing)", "-", *_cells(section["step"], total)],
        ]
        rows += [[h["name"], h["event"], *_cells(h, total)] for h in section["handlers"]]
        out.append(f"\n## {title}: HandlersTimeProfiler\n")
        out.append(
            markdown_table(
                ["what", "event", "total s", "calls", "mean ms", "max ms", "share of training"], rows
            )
        )
    for title, key in (("Trainer", "trainer_events"), ("Evaluator", "evaluator_events")):
        rows = [[name, *_cells(stats, total)] for name, stats in results[key].items() if stats["calls"]]
        out.append(f"\n## {title}: BasicTimeProfiler (per event)\n")
        out.append(
            markdown_table(["what", "total s", "calls", "mean ms", "max ms", "share of training"], rows)
        )
    return "\n".join(out)


def _cells(stats: dict[str, float], total: float) -> list[str]:
    return [
        f"{stats['total_s']:.3f}",
        str(stats["calls"]),
        f"{stats['mean_ms']:.2f}",
        f"{stats['max_ms']:.2f}",
        f"{100 * stats['total_s'] / total:.1f}%",
    ]
