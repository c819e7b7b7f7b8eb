"""What the exporters share about a run's events: which traces to export (``select_traces``), when a span began
(``span_start``), which engine request an event belongs to (``request_id``), programs' names
(``program_names``) and DAG edges (``dag_edges``), and attributes as strict JSON (``json_safe``).

``export_chrome`` and ``export_otlp`` import this module, ``export`` dispatches to them; nothing here imports an
exporter, so the three never import each other in a loop.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pydantic_core

from tether.runtime.tracing.events import TraceEvent
from tether.runtime.tracing.store import Run

SPAN_KINDS = frozenset(
    {
        "program_end",
        "node_end",
        "node_error",
        "node_cancelled",
        "llm_turn",
        "tool_call",
        "llm_admitted",
        "llm_prefill",
        "llm_finished",
        "engine_step",
        "model_load",
    }
)
NODE_SPAN_KINDS = ("node_end", "node_error", "node_cancelled")


class ExportError(ValueError):
    """A run that cannot be exported as asked: an unknown format or trace name."""


def select_traces(run: Run, trace: str | None) -> dict[str, list[TraceEvent]]:
    """Every trace of ``run`` (``trace`` None), else just ``trace``; ``ExportError`` naming the run's traces
    for a name it has not."""
    if trace is None:
        return dict(run.traces)
    if trace not in run.traces:
        known = ", ".join(run.traces) or "none"
        raise ExportError(f"run {run.run_id!r} has no trace {trace!r} (its traces: {known})")
    return {trace: run.traces[trace]}


def span_start(event: TraceEvent) -> float:
    """When the event's span began: ``start``; for a span kind recorded without it, ``ts - duration_s``; for
    an instant, ``ts``. Never after ``ts``."""
    if event.start is not None:
        return min(event.start, event.ts)
    duration = event.attrs.get("duration_s")
    if event.kind in SPAN_KINDS and isinstance(duration, (int, float)) and duration > 0:
        return event.ts - duration
    return event.ts


def request_id(event: TraceEvent) -> str | None:
    """The engine request an engine event belongs to: ``attrs.request_id``, else its ``node_id``."""
    rid = event.attrs.get("request_id", event.node_id)
    return None if rid is None else str(rid)


def program_names(events: list[TraceEvent]) -> dict[str, str]:
    """program_id -> the program's name (``program_start.attrs.program``)."""
    return {
        e.program_id: str(e.attrs["program"])
        for e in events
        if e.kind == "program_start" and e.attrs.get("program")
    }


def dag_edges(events: list[TraceEvent]) -> dict[str, list[tuple[str, str]]]:
    """program_id -> its DAG edges (dep, node) in first-seen order: ``program_start``'s ``edges`` and its
    nodes' ``deps``, then the ``deps`` of each ``node_added``."""
    edges: dict[str, dict[tuple[str, str], None]] = defaultdict(dict)
    for e in events:
        if e.kind == "program_start":
            for edge in e.attrs.get("edges") or ():
                if isinstance(edge, (list, tuple)) and len(edge) == 2:
                    edges[e.program_id][(str(edge[0]), str(edge[1]))] = None
            nodes = e.attrs.get("nodes") or ()
        elif e.kind == "node_added":
            nodes = [e.attrs.get("node")]
        else:
            continue
        for node in nodes:
            if isinstance(node, dict) and node.get("id") is not None:
                for dep in node.get("deps") or ():
                    edges[e.program_id][(str(dep), str(node["id"]))] = None
    return {program_id: list(found) for program_id, found in edges.items()}


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: values that are not JSON as pydantic would convert them, else by ``str``;
    NaN and infinities as ``None`` (browsers' ``JSON.parse`` rejects them)."""
    return pydantic_core.to_jsonable_python(value, fallback=str, inf_nan_mode="null")
