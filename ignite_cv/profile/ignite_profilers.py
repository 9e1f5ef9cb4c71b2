"""Work-arounds for Ignite 0.5's time profilers, kept in one place.

Ignite's ``BasicTimeProfiler`` and ``HandlersTimeProfiler`` reset at every ``engine.run``; the
evaluator runs once per epoch, so the subclasses here add the runs up. ``HandlersTimeProfiler`` also
re-adds its timer handlers at every run without removing them (a second run would record every step
twice) and reads every event's handler list from the engine's ``defaultdict``, which creates an empty
``EXCEPTION_RAISED`` entry that makes the Engine swallow the run's exceptions; both are undone here.
This needs Ignite internals (``_reset``, ``_as_first_started``, ``_detach_profiler_handlers``,
``engine._event_handlers``, ``engine._process_function``): no upstream issue was found for either
problem (the profiler came in pytorch/ignite#1398); if Ignite changes them, only this module breaks.
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import BasicTimeProfiler, HandlersTimeProfiler


class AccumulatingBasicTimeProfiler(BasicTimeProfiler):
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


class AccumulatingHandlersTimeProfiler(HandlersTimeProfiler):
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


class SyncedStep:
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
