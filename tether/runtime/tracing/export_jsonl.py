"""A run as JSON lines: ``to_jsonl(run, trace=None) -> str``, what ``read_trace`` reads back."""

from __future__ import annotations

import pydantic_core

from tether.runtime.tracing.spans import select_traces
from tether.runtime.tracing.store import Run


def to_jsonl(run: Run, trace: str | None = None) -> str:
    """The selected traces' events, concatenated, one JSON object per line. When the run has more than one
    trace each line also names its trace (``"trace": name``)."""
    tag = len(run.traces) > 1
    lines = []
    for name, events in select_traces(run, trace).items():
        for event in events:
            data = event.to_dict()
            if tag:
                data["trace"] = name
            lines.append(pydantic_core.to_json(data, fallback=str).decode())
    return "".join(line + "\n" for line in lines)
