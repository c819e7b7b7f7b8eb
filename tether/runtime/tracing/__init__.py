"""Trace events of runs (the executor's and the engine's), their sinks, the run store and exporters. See
docs/tracing.md."""

from __future__ import annotations

from tether.runtime.tracing.events import ENGINE_PROGRAM, EVENT_KINDS, TraceEvent
from tether.runtime.tracing.store import RunNotFoundError, RunRecorder, list_runs, load_run, trace_root
from tether.runtime.tracing.writer import (
    FanoutTraceSink,
    JsonlTraceWriter,
    MemoryTraceSink,
    TraceClosedError,
    TraceFormatError,
    TraceSink,
    TraceWriteError,
    read_trace,
)

__all__ = [
    "ENGINE_PROGRAM",
    "EVENT_KINDS",
    "FanoutTraceSink",
    "JsonlTraceWriter",
    "MemoryTraceSink",
    "RunNotFoundError",
    "RunRecorder",
    "TraceClosedError",
    "TraceEvent",
    "TraceFormatError",
    "TraceSink",
    "TraceWriteError",
    "list_runs",
    "load_run",
    "read_trace",
    "trace_root",
]
