"""A run as OTLP JSON, the JSON mapping of an OTLP ``ExportTraceServiceRequest``: ``to_otlp(run, trace=None)``.

One resource per exported trace (attributes ``service.name``, ``tether.run_id``, ``tether.run.kind``,
``tether.trace``) and one OpenTelemetry trace per program:

    invoke_agent <program>                 root: program_start .. program_end
      <node id>                            node_end / node_error / node_cancelled (links: its deps' spans)
        chat                               llm_turn; its engine request's events are span events
        execute_tool <tool>                tool_call, one per attempt
      chat                                 an engine request no llm_turn names (a served request)
      model_load <model>                   the engine's model load (program ``_engine``: root ``engine``)

Ids are hex (``traceId`` 32 digits, ``spanId`` 16) hashed from the run, trace, program and node id or event
index, so one run always exports the same text. Times are integer nanoseconds (microsecond precision, as
recorded). A parent is widened to cover its children should the clock put a child outside it. The engine's
per-step events (``engine_step``) are metrics, not spans, and are left out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tether.runtime.tracing.events import ENGINE_PROGRAM, TraceEvent
from tether.runtime.tracing.spans import (
    NODE_SPAN_KINDS,
    dag_edges,
    json_safe,
    program_names,
    request_id,
    select_traces,
    span_start,
)
from tether.runtime.tracing.store import Run

SPAN_KIND_INTERNAL = 1
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
REQUEST_KINDS = ("llm_queued", "llm_admitted", "llm_prefill", "llm_first_token", "llm_finished", "kv")
USAGE_ATTRS = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached_tokens": "gen_ai.usage.cache_read.input_tokens",
}
INT64 = 2**63


def ns(t: float) -> int:
    return round(t * 1e6) * 1000


@dataclass
class _Span:
    span_id: str
    parent_id: str | None
    name: str
    start: int  # ns
    end: int
    attrs: dict[str, Any]
    status: tuple[int, str] = (STATUS_UNSET, "")
    events: list[TraceEvent] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    children: list[_Span] = field(default_factory=list)

    def cover(self, child: _Span) -> None:
        self.children.append(child)
        self.start, self.end = min(self.start, child.start), max(self.end, child.end)


def to_otlp(run: Run, trace: str | None = None) -> dict[str, Any]:
    """The run's traces (or the one named ``trace``) as ``{"resourceSpans": [...]}``."""
    try:
        version = importlib.metadata.version("tether")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    scope = {"name": "tether", **({"version": version} if version else {})}
    resource_spans = []
    for name, events in select_traces(run, trace).items():
        resource = {
            "service.name": "tether",
            "tether.run_id": run.run_id,
            "tether.run.kind": run.meta.get("kind"),
            "tether.trace": name,
        }
        spans = _trace_spans(run.run_id, name, events)
        resource_spans.append(
            {
                "resource": {"attributes": attributes(resource)},
                "scopeSpans": [{"scope": scope, "spans": spans}],
            }
        )
    return {"resourceSpans": resource_spans}


def _trace_spans(run_id: str, trace: str, events: list[TraceEvent]) -> list[dict[str, Any]]:
    names = program_names(events)
    by_program: dict[str, list[tuple[int, TraceEvent]]] = defaultdict(list)
    for i, e in enumerate(events):
        if e.kind != "engine_step":
            by_program[e.program_id].append((i, e))
    spans = []
    for program_id, indexed in by_program.items():
        trace_id = _hex(f"{run_id}/{trace}/{program_id}", 32)
        root = _program_tree(trace_id, program_id, names.get(program_id, program_id), indexed)
        spans += [_span_json(trace_id, s) for s in _walk(root)]
    return spans


def _program_tree(trace_id: str, program_id: str, name: str, indexed: list[tuple[int, TraceEvent]]) -> _Span:
    """The program's root span with its node spans, their calls and the engine requests no call names."""

    def sid(key: str) -> str:
        return _hex(f"{trace_id}/{key}", 16)

    root = _root_span(sid("program"), program_id, name, [e for _, e in indexed])
    nodes: dict[str, _Span] = {}
    calls: list[tuple[str | None, _Span]] = []
    requests: dict[str, list[TraceEvent]] = defaultdict(list)
    for i, e in indexed:
        if e.kind == "program_start":
            root.attrs |= {k: v for k, v in e.attrs.items() if k != "program"}
        elif e.kind == "program_end":
            root.start, root.end = ns(span_start(e)), ns(e.ts)
            root.attrs |= e.attrs
            root.status = _status(e.attrs.get("status"), e.attrs.get("error"))
        elif e.kind == "node_start" and e.node_id is not None and e.node_id not in nodes:
            attrs = {"tether.node_id": e.node_id, **e.attrs}
            nodes[e.node_id] = _Span(
                sid(f"node/{e.node_id}"), root.span_id, e.node_id, ns(e.ts), ns(e.ts), attrs
            )
        elif e.kind in NODE_SPAN_KINDS and e.node_id is not None:
            span = nodes.setdefault(
                e.node_id, _Span(sid(f"node/{e.node_id}"), root.span_id, e.node_id, 0, 0, {})
            )
            span.start, span.end = ns(span_start(e)), ns(e.ts)
            span.attrs |= {"tether.node_id": e.node_id, **e.attrs}
            status = {"node_end": "ok", "node_error": "error", "node_cancelled": "cancelled"}[e.kind]
            span.status = _status(status, e.attrs.get("error"))
        elif e.kind in ("llm_turn", "tool_call"):
            calls.append((e.node_id, _call_span(sid(f"event/{i}"), e)))
        elif e.kind == "model_load":
            calls.append((None, _load_span(sid(f"event/{i}"), e)))
        elif e.kind in REQUEST_KINDS:
            requests[request_id(e) or ""].append(e)
    chats = {str(s.attrs["request_id"]): s for _, s in calls if s.attrs.get("request_id") is not None}
    for rid, request_events in requests.items():
        if rid in chats:
            chats[rid].events += request_events
        elif rid:
            calls.append((None, _request_span(sid(f"request/{rid}"), rid, request_events)))
        else:
            root.events += request_events  # engine events of no request (a pin expiring)
    for node_id, span in calls:
        parent = nodes.get(node_id) if node_id is not None else None
        span.parent_id = (parent or root).span_id
        (parent or root).cover(span)
    for span in nodes.values():
        root.cover(span)
    for dep, node in dag_edges([e for _, e in indexed]).get(program_id, []):
        if dep in nodes and node in nodes:
            nodes[node].links.append(nodes[dep].span_id)
    return root


def _root_span(span_id: str, program_id: str, name: str, events: list[TraceEvent]) -> _Span:
    """``invoke_agent <name>`` over all the program's events until its ``program_end`` says otherwise; the
    engine's own requests (program ``_engine``) hang under a root named ``engine``."""
    first, last = ns(min(span_start(e) for e in events)), ns(max(e.ts for e in events))
    if program_id == ENGINE_PROGRAM:
        return _Span(span_id, None, "engine", first, last, {"tether.program_id": program_id})
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
    attrs |= {"gen_ai.conversation.id": program_id, "tether.program_id": program_id}
    return _Span(span_id, None, f"invoke_agent {name}", first, last, attrs)


def _call_span(span_id: str, e: TraceEvent) -> _Span:
    if e.kind == "llm_turn":
        name = "chat"
    else:
        name = f"execute_tool {e.attrs.get('gen_ai.tool.name', e.node_id)}"
    attrs = {"tether.node_id": e.node_id, **e.attrs}
    status = _status(e.attrs.get("status", "ok"), e.attrs.get("error"))
    return _Span(span_id, None, name, ns(span_start(e)), ns(e.ts), attrs, status)


def _load_span(span_id: str, e: TraceEvent) -> _Span:
    name = f"model_load {e.attrs.get('model', '')}".rstrip()
    return _Span(span_id, None, name, ns(span_start(e)), ns(e.ts), dict(e.attrs), (STATUS_OK, ""))


def _request_span(span_id: str, rid: str, events: list[TraceEvent]) -> _Span:
    """A ``chat`` span for an engine request that no ``llm_turn`` names: arrival to finish."""
    finished = next((e for e in events if e.kind == "llm_finished"), None)
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "request_id": rid}
    if finished is not None:
        attrs |= finished.attrs
        attrs |= {USAGE_ATTRS[k]: v for k, v in finished.attrs.items() if k in USAGE_ATTRS}
    status = (STATUS_OK, "") if finished is not None else (STATUS_UNSET, "")
    start, end = ns(min(span_start(e) for e in events)), ns(max(e.ts for e in events))
    return _Span(span_id, None, "chat", start, end, attrs, status, events=list(events))


def _status(status: Any, error: Any) -> tuple[int, str]:
    if status is None:
        return STATUS_UNSET, ""
    if status == "ok":
        return STATUS_OK, ""
    return STATUS_ERROR, str(error) if error else str(status)


def _walk(span: _Span) -> list[_Span]:
    return [span] + [s for child in span.children for s in _walk(child)]


def _hex(key: str, digits: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:digits]


def _span_json(trace_id: str, span: _Span) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": trace_id, "spanId": span.span_id}
    if span.parent_id:
        out["parentSpanId"] = span.parent_id
    out |= {
        "name": span.name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(span.start),
        "endTimeUnixNano": str(max(span.end, span.start)),
        "attributes": attributes(span.attrs),
    }
    if span.events:
        out["events"] = [
            {
                "timeUnixNano": str(ns(e.ts)),
                "name": f"kv {e.attrs.get('action')}" if e.kind == "kv" else e.kind,
                "attributes": attributes(e.attrs),
            }
            for e in span.events
        ]
    if span.links:
        out["links"] = [{"traceId": trace_id, "spanId": link} for link in span.links]
    code, message = span.status
    out["status"] = {"code": code, **({"message": message} if message else {})}
    return out


def attributes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """OTLP ``KeyValue``s of ``attrs``, ``None`` values left out."""
    return [{"key": str(k), "value": any_value(v)} for k, v in attrs.items() if v is not None]


def any_value(v: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue``: bool, int (as a string, int64), float, str, a list of those as ``arrayValue``;
    anything else (objects, nested lists) as its JSON text."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int) and -INT64 <= v < INT64:
        return {"intValue": str(v)}
    if isinstance(v, float):
        if math.isfinite(v):
            return {"doubleValue": v}
        return {"doubleValue": "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    return {"stringValue": json.dumps(json_safe(v), separators=(",", ":"), allow_nan=False)}
