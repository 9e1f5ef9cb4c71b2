"""A training run's profile (``--profile``): where the seconds of the first phase went.

Ignite's ``BasicTimeProfiler`` (data loading, the step, handlers per event) and ``HandlersTimeProfiler``
(each handler by name) on the trainer and the evaluator (:mod:`ignite_cv.profile.ignite_profilers`),
plus a ``torch.profiler`` trace of a few training steps after warm-up (TensorBoard's profiler plugin or
``chrome://tracing`` / Perfetto open it). Everything goes to ``<run>/profile/``: ``timing.md``
(tables), ``profile.json``, ``summary.txt``, ``trace/`` and ``trace/top_ops.txt``, each written
atomically. On a GPU each step is followed by a synchronisation while profiling, so the step's time
includes its kernels instead of leaking into whatever waits next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from ignite_cv.profile.ignite_profilers import (
    AccumulatingBasicTimeProfiler,
    AccumulatingHandlersTimeProfiler,
    SyncedStep,
)
from ignite_cv.profile.model import quiet_stderr, synchronize
from ignite_cv.profile.report import largest_cost, summarize, timing_tables
from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic

_INTERNAL = ("BasicTimeProfiler.", "HandlersTimeProfiler.", "_TraceWindow.", "RunProfiler.")


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
        synchronize(self.device)
        with quiet_stderr():
            self.prof.stop()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            tensorboard_trace_handler(str(self.out_dir), worker_name="trainer")(self.prof)
        self.files = sorted(str(p) for p in self.out_dir.glob("*.pt.trace.json*"))
        sort_key = "self_device_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        table = self.prof.key_averages().table(sort_by=sort_key, row_limit=20)
        write_text_atomic(
            self.out_dir / "top_ops.txt",
            f"torch.profiler, training iterations {self.first}-{self.last}\n{table}\n",
        )
        self.prof = None


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
        self.trainer_basic = AccumulatingBasicTimeProfiler()
        self.trainer_handlers = AccumulatingHandlersTimeProfiler()
        self.eval_basic = AccumulatingBasicTimeProfiler()
        self.eval_handlers = AccumulatingHandlersTimeProfiler()
        self.trace = _TraceWindow(self.out_dir / "trace", warmup_steps, trace_steps, self.device)
        self.evaluator: Engine | None = None
        self.trainer: Engine | None = None
        self.synced: list[SyncedStep] = []
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
            self.synced = [SyncedStep(e, self.device) for e in (trainer, evaluator) if e is not None]
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
        write_text_atomic(self.out_dir / "timing.md", timing_tables(results))
        write_json_atomic(self.out_dir / "profile.json", results, default=str)
        write_text_atomic(self.out_dir / "summary.txt", paragraph + "\n")
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
