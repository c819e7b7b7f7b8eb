"""``follow_run``: the server-sent events of ``GET /api/runs/{id}/live``.

Every ``poll_s`` the run's ``run.json`` and trace files are checked; the stream carries

    event: run          data: run.json, when it changed (status, a trace added)
    event: events       data: {"trace", "events": [...], "offset"}  (lines completed since the last poll)
    event: trace-error  data: {"error": {...}}                       (a malformed line; the stream ends)
    event: end          data: run.json                               (the run is no longer "running")

Each trace is followed from the byte offset the client names (the ``offsets`` of the run's payload), else
from its start; a trace that appears later in ``run.json`` from its start. A comment line every
``heartbeat_s`` keeps idle connections open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from tether.runtime.sse import sse_comment, sse_json
from tether.runtime.tracing import RunNotFoundError, TraceFormatError
from tether.runtime.tracing.store import run_meta
from tether.runtime.ui.tail import TraceTail


def sse(event: str, data: Any) -> str:
    """``event: {event}`` with ``data`` as JSON (values that are not JSON by ``str``)."""
    return sse_json(data, event=event, default=str)


async def follow_run(
    root: Path,
    run_id: str,
    offsets: dict[str, int],
    *,
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = 0.3,
    heartbeat_s: float = 10.0,
) -> AsyncIterator[str]:
    tails: dict[str, TraceTail] = {}
    last_meta: dict[str, Any] | None = None
    last_sent = time.monotonic()
    while not await disconnected():
        try:
            meta = {**run_meta(root, run_id), "run_id": run_id}
        except (RunNotFoundError, TraceFormatError) as exc:
            yield sse("trace-error", {"error": error_body(exc)})
            return
        if meta != last_meta:
            yield sse("run", meta)
            last_meta, last_sent = meta, time.monotonic()
        for name, file in (meta.get("traces") or {}).items():
            if name not in tails:
                tails[name] = TraceTail(root / run_id / file, offsets.get(name, 0))
        final = meta.get("status") != "running"
        for name, tail in tails.items():
            try:
                events = tail.read(final=final)
            except TraceFormatError as exc:
                yield sse("trace-error", {"error": error_body(exc)})
                return
            if events:
                yield sse(
                    "events", {"trace": name, "events": [e.to_dict() for e in events], "offset": tail.offset}
                )
                last_sent = time.monotonic()
        if final:
            yield sse("end", meta)
            return
        if time.monotonic() - last_sent > heartbeat_s:
            yield sse_comment("keep-alive")
            last_sent = time.monotonic()
        await asyncio.sleep(poll_s)


def error_body(exc: Exception) -> dict[str, Any]:
    """The JSON error of a failed read: ``type`` (not_found / trace_format / ...), ``message`` and, for a
    malformed trace, ``path``, ``line`` and ``reason``."""
    if isinstance(exc, RunNotFoundError):
        return {"type": "not_found", "message": str(exc), "run_id": exc.run_id}
    if isinstance(exc, TraceFormatError):
        return {
            "type": "trace_format",
            "message": f"malformed trace: {exc}",
            "path": exc.path,
            "line": exc.line,
            "reason": exc.reason,
        }
    return {"type": "error", "message": str(exc)}
