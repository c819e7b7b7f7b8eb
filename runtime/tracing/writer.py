"""Trace sinks: ``JsonlTraceWriter`` (one JSON object per line, the file the trace store reads) and
``MemoryTraceSink`` (a list, for inspection in process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import pydantic_core

from runtime.tracing.events import TraceEvent


@runtime_checkable
class TraceSink(Protocol):
    """Receives events in emission order; ``emit`` must not block the event loop for long."""

    def emit(self, event: TraceEvent) -> None: ...

    def close(self) -> None: ...


class JsonlTraceWriter:
    """Appends events to ``path`` (parent folders are created), buffered; ``flush``/``close`` write them out.
    Values that are not JSON (pydantic models, dates) are converted as pydantic would, others by ``str``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = self.path.open("ab")
        self.count = 0

    def emit(self, event: TraceEvent) -> None:
        if self._file is None:
            raise ValueError(f"trace {self.path} is closed")
        self._file.write(pydantic_core.to_json(event.to_dict(), fallback=str) + b"\n")
        self.count += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
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

    def emit(self, event: TraceEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]


def read_trace(path: str | Path) -> list[TraceEvent]:
    """The events of a JSONL trace, in file order."""
    with Path(path).open() as f:
        return [TraceEvent.from_dict(json.loads(line)) for line in f if line.strip()]
