"""A run as Chrome Trace Event JSON (Perfetto, chrome://tracing): ``to_chrome(run, trace=None) -> dict``.

Layout (timestamps: integer microseconds from the exported events' earliest start):

    pid "<program>" (or "<trace>/<program>" when several traces are exported)
      tid "program"      invoke_agent <program>          (program_end)
      tid "nodes N"      <node id>                       (node_end / node_error / node_cancelled)
      tid "calls N"      chat <node> | execute_tool <tool>   (llm_turn, tool_call)
      tid "requests N"   queued | prefill | decode       (the program's engine requests)
      instants           kv <action>, llm_queued, llm_first_token, node_added
      flows              DAG edges: end of the dep's node span -> start of the node's span
    pid "engine"
      tid "load"         load <model>                    (model_load)
      tid "steps"        step                            (engine_step)
      counters           "KV blocks" (used, pinned, cached, free, cpu), "queue" (running, waiting)

Lanes are assigned per process and group by ``assign_lanes``, so no two complete events on one thread overlap.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
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

LANE_GROUPS = ("program", "nodes", "calls", "requests", "load", "steps")
NUMBERED_GROUPS = ("nodes", "calls", "requests")  # always "<group> N"; the others only from their 2nd lane
KV_COUNTERS = ("used", "pinned", "cached", "free", "cpu")
QUEUE_COUNTERS = ("running", "waiting")
FLOW_CATEGORY = "dag"


def us(t: float) -> int:
    return round(t * 1e6)


def assign_lanes(intervals: Sequence[tuple[int, int]]) -> list[int]:
    """Greedy interval partitioning: in order of start (then end), each interval takes the lowest lane whose
    last interval ended at or before its start, else a new lane. Returns each interval's lane (0-based); the
    number of lanes is the most intervals open at one time."""
    lanes = [0] * len(intervals)
    ends: list[int] = []
    for i in sorted(range(len(intervals)), key=lambda i: intervals[i]):
        start, end = intervals[i]
        lane = next((k for k, last in enumerate(ends) if last <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        lanes[i] = lane
    return lanes


@dataclass
class _Item:
    """Complete events that share one lane slot: a span, or an engine request's consecutive phases."""

    pid: int
    group: str
    parts: list[tuple[str, str, int, int, dict[str, Any]]]  # (name, cat, start µs, end µs, args)
    tid: int = 0

    @property
    def start(self) -> int:
        return min(p[2] for p in self.parts)

    @property
    def end(self) -> int:
        return max(p[3] for p in self.parts)


@dataclass
class _Request:
    admitted: TraceEvent | None = None
    first_token: TraceEvent | None = None
    finished: TraceEvent | None = None


@dataclass
class _Builder:
    epoch: int
    several: bool
    pids: dict[tuple[str, str], int] = field(default_factory=dict)
    process_names: dict[int, str] = field(default_factory=dict)
    process_labels: dict[int, str] = field(default_factory=dict)
    items: list[_Item] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    flows: list[tuple[_Item, _Item, str]] = field(default_factory=list)
    thread_names: dict[tuple[int, int], str] = field(default_factory=dict)

    def rel(self, t: float) -> int:
        return us(t) - self.epoch

    def pid(self, trace: str, program_id: str, names: dict[str, str]) -> int:
        key = (trace, program_id)
        if key not in self.pids:
            pid = self.pids[key] = len(self.pids) + 1
            name = "engine" if program_id == ENGINE_PROGRAM else names.get(program_id, program_id)
            self.process_names[pid] = f"{trace}/{name}" if self.several else name
            if program_id != ENGINE_PROGRAM:
                self.process_labels[pid] = program_id
        return self.pids[key]

    def span(self, pid: int, group: str, name: str, cat: str, event: TraceEvent) -> _Item:
        start, end = self.rel(span_start(event)), self.rel(event.ts)
        item = _Item(pid, group, [(name, cat, start, end, json_safe(event.attrs))])
        self.items.append(item)
        return item

    def instant(self, pid: int, name: str, cat: str, event: TraceEvent) -> None:
        self.events.append(
            {
                "ph": "i",
                "s": "p",
                "name": name,
                "cat": cat,
                "pid": pid,
                "tid": 0,
                "ts": self.rel(event.ts),
                "args": json_safe(event.attrs),
            }
        )

    def counter(self, pid: int, name: str, event: TraceEvent, keys: Sequence[str], prefix: str) -> None:
        values = {k: event.attrs.get(prefix + k) for k in keys}
        args = {k: v for k, v in values.items() if _number(v)}
        if args:
            self.events.append({"ph": "C", "name": name, "pid": pid, "ts": self.rel(event.ts), "args": args})


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def to_chrome(run: Run, trace: str | None = None) -> dict[str, Any]:
    """The run's traces (or the one named ``trace``) as ``{"traceEvents": [...], "displayTimeUnit": "ms"}``."""
    traces = select_traces(run, trace)
    starts = [span_start(e) for events in traces.values() for e in events]
    b = _Builder(epoch=us(min(starts)) if starts else 0, several=len(traces) > 1)
    for name, events in traces.items():
        _add_trace(b, name, events)
    _assign_tids(b)
    body = [x for item in b.items for x in _complete_events(item)] + b.events + _flow_events(b)
    body.sort(key=lambda e: e["ts"])  # stable: equal times keep their order
    return {"traceEvents": _metadata(b) + body, "displayTimeUnit": "ms"}


def _add_trace(b: _Builder, trace: str, events: list[TraceEvent]) -> None:
    names = program_names(events)
    node_items: dict[tuple[str, str], _Item] = {}
    requests: dict[tuple[str, str], _Request] = defaultdict(_Request)
    for e in events:
        pid = b.pid(trace, e.program_id, names)
        if e.kind == "program_end":
            b.span(pid, "program", f"invoke_agent {names.get(e.program_id, e.program_id)}", "program", e)
        elif e.kind in NODE_SPAN_KINDS:
            node_items[(e.program_id, str(e.node_id))] = b.span(pid, "nodes", str(e.node_id), "node", e)
        elif e.kind == "llm_turn":
            b.span(pid, "calls", f"chat {e.node_id}", "llm", e)
        elif e.kind == "tool_call":
            b.span(pid, "calls", f"execute_tool {e.attrs.get('gen_ai.tool.name', e.node_id)}", "tool", e)
        elif e.kind == "model_load":
            b.span(pid, "load", f"load {e.attrs.get('model', '')}".rstrip(), "engine", e)
        elif e.kind == "engine_step":
            b.span(pid, "steps", "step", "engine", e)
            b.counter(pid, "KV blocks", e, KV_COUNTERS, "blocks_")
            b.counter(pid, "queue", e, QUEUE_COUNTERS, "")
        elif e.kind == "kv":
            b.instant(pid, str(e.attrs.get("action", "kv")), "kv", e)
        elif e.kind == "node_added":
            node = e.attrs.get("node")
            b.instant(pid, f"node_added {node.get('id') if isinstance(node, dict) else ''}", "node", e)
        if e.kind in ("llm_queued", "llm_first_token"):
            b.instant(pid, e.kind, "engine", e)
        if e.kind in ("llm_admitted", "llm_first_token", "llm_finished"):
            setattr(requests[(e.program_id, request_id(e) or "")], e.kind.removeprefix("llm_"), e)
    for (program_id, rid), request in requests.items():
        parts = _request_phases(b, rid, request)
        if parts:
            b.items.append(_Item(b.pid(trace, program_id, names), "requests", parts))
    for program_id, edges in dag_edges(events).items():
        for dep, node in edges:
            source, target = node_items.get((program_id, dep)), node_items.get((program_id, node))
            if source is not None and target is not None:
                b.flows.append((source, target, f"{dep} -> {node}"))


def _request_phases(b: _Builder, rid: str, r: _Request) -> list[tuple[str, str, int, int, dict[str, Any]]]:
    """queued (arrival to admission), then prefill (admission to first token) and decode (first token to
    finish), or one "running" phase when the request finished without a first-token event."""
    spans = [e for e in (r.admitted, r.finished) if e is not None]
    if not spans:
        return []
    arrival = min(b.rel(span_start(e)) for e in spans)
    admission = None
    if r.admitted is not None:
        admission = b.rel(r.admitted.ts)
    elif r.finished is not None and _number(r.finished.attrs.get("queued_s")):
        admission = b.rel(span_start(r.finished) + r.finished.attrs["queued_s"])
    finish = b.rel(r.finished.ts) if r.finished is not None else None
    if admission is not None and finish is not None:
        admission = min(admission, finish)
    parts = []
    if admission is not None:
        admission = max(admission, arrival)
        args = {"request_id": rid, **json_safe((r.admitted or r.finished).attrs)}  # type: ignore[union-attr]
        parts.append(("queued", "engine", arrival, admission, args))
    if r.finished is not None and finish is not None:
        begin = arrival if admission is None else admission
        args = {"request_id": rid, **json_safe(r.finished.attrs)}
        first = None if r.first_token is None else min(max(b.rel(r.first_token.ts), begin), finish)
        if first is None:
            parts.append(("running", "engine", begin, finish, args))
        else:
            parts += [("prefill", "engine", begin, first, args), ("decode", "engine", first, finish, args)]
    return parts


def _flow_events(b: _Builder) -> list[dict[str, Any]]:
    """An arrow per DAG edge from the end of the dep's span to the start of the node's; each end sits up to
    1 µs inside its span so a viewer binds it to that span, not to a neighbour on the lane that ends or starts
    at the same time."""
    events: list[dict[str, Any]] = []
    for flow_id, (source, target, name) in enumerate(b.flows, 1):
        s_ts = source.end - _inset(source)
        f_ts = target.start + _inset(target)
        common = {"name": name, "cat": FLOW_CATEGORY, "id": flow_id}
        events.append({"ph": "s", **common, "pid": source.pid, "tid": source.tid, "ts": s_ts})
        events.append({"ph": "f", "bp": "e", **common, "pid": target.pid, "tid": target.tid, "ts": f_ts})
    return events


def _inset(item: _Item) -> float:
    duration = item.end - item.start
    return 1 if duration >= 2 else duration / 2


def _assign_tids(b: _Builder) -> None:
    """Lanes per (process, group); tids number each process's lanes in group order from 1 (0: instants)."""
    by_slot: dict[tuple[int, str], list[_Item]] = defaultdict(list)
    for item in b.items:
        by_slot[(item.pid, item.group)].append(item)
    next_tid: dict[int, int] = defaultdict(lambda: 1)
    for pid, group in sorted(by_slot, key=lambda s: (s[0], LANE_GROUPS.index(s[1]))):
        items = by_slot[(pid, group)]
        lanes = assign_lanes([(item.start, item.end) for item in items])
        base = next_tid[pid]
        for item, lane in zip(items, lanes):
            item.tid = base + lane
        for lane in range(max(lanes) + 1):
            numbered = group in NUMBERED_GROUPS or lane > 0
            b.thread_names[(pid, base + lane)] = f"{group} {lane + 1}" if numbered else group
        next_tid[pid] = base + max(lanes) + 1


def _complete_events(item: _Item) -> list[dict[str, Any]]:
    return [
        {
            "ph": "X",
            "name": name,
            "cat": cat,
            "pid": item.pid,
            "tid": item.tid,
            "ts": s,
            "dur": max(0, e - s),
            "args": args,
        }
        for name, cat, s, e, args in item.parts
    ]


def _metadata(b: _Builder) -> list[dict[str, Any]]:
    meta: list[dict[str, Any]] = []
    for pid, name in b.process_names.items():
        meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        meta.append(
            {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}
        )
        if pid in b.process_labels:
            label = {"labels": b.process_labels[pid]}
            meta.append({"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": label})
    for (pid, tid), name in sorted(b.thread_names.items()):
        meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
        meta.append(
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}}
        )
    return meta
