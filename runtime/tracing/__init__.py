"""Trace events of program runs (one per node start/end/error, LLM turn and tool call) and their sinks."""

from __future__ import annotations

from runtime.tracing.events import EVENT_KINDS, TraceEvent
from runtime.tracing.writer import JsonlTraceWriter, MemoryTraceSink, TraceSink, read_trace

__all__ = ["EVENT_KINDS", "JsonlTraceWriter", "MemoryTraceSink", "TraceEvent", "TraceSink", "read_trace"]
