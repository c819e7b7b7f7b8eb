"""Trace sinks: ``JsonlTraceWriter`` (one JSON object per line, flushed per event, safe to call from any thread:
the engine emits from its own) and ``MemoryTraceSink`` (a list, for inspection in process); ``read_trace``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import pydantic_core

from tether.runtime.tracing.events import TraceEvent


@runtime_checkable
class TraceSink(Protocol):
    """Receives events in emission order; ``emit`` must not block the event loop for long and may be called
    from the engine's thread."""

    def emit(self, event: TraceEvent) -> None: ...

    def close(self) -> None: ...


class TraceFormatError(ValueError):
    """A trace line that is not an event: ``path`` and ``line`` (1-based) say which, ``reason`` why."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class JsonlTraceWriter:
    """Appends events to ``path`` (parent folders are created), one line each, written and flushed as it is
    emitted, so a crash keeps every event emitted before it. Values that are not JSON (pydantic models, dates)
    are converted as pydantic would, others by ``str``. A lock orders lines from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = self.path.open("ab")
        self._lock = threading.Lock()
        self.count = 0

    def emit(self, event: TraceEvent) -> None:
        line = pydantic_core.to_json(event.to_dict(), fallback=str) + b"\n"
        with self._lock:
            if self._file is None:
                raise ValueError(f"trace {self.path} is closed")
            self._file.write(line)
            self._file.flush()
            self.count += 1

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> JsonlTraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryTraceSink:
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
    dropped (a run being written, or a crash mid-line); any other bad line raises ``TraceFormatError``."""
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
