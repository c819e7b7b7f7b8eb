"""Trace sinks: the ``TraceSink`` protocol, ``JsonlTraceWriter`` (a JSON lines file written by its own thread,
see ``jsonl_writer``), ``MemoryTraceSink`` (a list, for inspection in process) and ``FanoutTraceSink``; and
``read_trace``, which reads a JSONL trace back. Every sink may be called from any thread: the engine emits from
its own."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from tether.runtime.tracing.events import TraceEvent
from tether.runtime.tracing.jsonl_writer import (
    JsonlTraceWriter,
    TraceClosedError,
    TraceWriteError,
    sync_writers_of,
)

__all__ = [
    "FanoutTraceSink",
    "JsonlTraceWriter",
    "MemoryTraceSink",
    "TraceClosedError",
    "TraceFormatError",
    "TraceSink",
    "TraceWriteError",
    "read_trace",
]


@runtime_checkable
class TraceSink(Protocol):
    """Receives events in emission order. ``emit`` may be called from the engine's thread and must not block
    it (nor the event loop) on I/O: a sink that writes hands the writing to a thread of its own. ``close``
    returns once every event emitted before it is where the sink puts events."""

    def emit(self, event: TraceEvent) -> None: ...

    def close(self) -> None: ...


class TraceFormatError(ValueError):
    """A trace line that is not an event: ``path`` and ``line`` (1-based) say which, ``reason`` why."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class MemoryTraceSink:
    """Keeps the events in ``events``, in emission order; no I/O, so ``emit`` appends directly."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self._lock = threading.Lock()

    def emit(self, event: TraceEvent) -> None:
        with self._lock:
            self.events.append(event)

    def close(self) -> None:
        pass

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]


class FanoutTraceSink:
    """Emits every event to each of ``sinks`` (a run's file and a caller's own sink)."""

    def __init__(self, *sinks: TraceSink) -> None:
        self.sinks = sinks

    def emit(self, event: TraceEvent) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def read_trace(path: str | Path) -> list[TraceEvent]:
    """The events of a JSONL trace, in file order. A last line without its newline that does not parse is
    dropped (a run being written, or a crash mid-line); any other bad line raises ``TraceFormatError``. The
    file includes every event emitted so far to a ``JsonlTraceWriter`` of this process that writes it."""
    sync_writers_of(path)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    events: list[TraceEvent] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last_unterminated = i == len(lines)  # no newline after it
        try:
            events.append(TraceEvent.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as exc:
            if last_unterminated and isinstance(exc, json.JSONDecodeError):
                break
            raise TraceFormatError(str(path), i, str(exc)) from None
    return events
