"""``TraceEvent``: one thing that happened in a run, as the executor and the engine emit it and the trace store
keeps it. The kinds, their spans and attributes are specified in docs/tracing.md ("Events").

``ts`` is when the event was emitted and ``start`` when its span began (``None`` for an instant); both are wall
clock seconds (``time.time()``), one clock for every emitter. Attributes follow OpenTelemetry's GenAI names
where one exists (``gen_ai.operation.name``, ``gen_ai.usage.input_tokens``, ``gen_ai.tool.name``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    # executor
    "program_start",
    "program_end",
    "node_added",
    "node_start",
    "node_end",
    "node_error",
    "node_cancelled",
    "node_skipped",  # a node recorded as planned but not run (a planner's task whose input failed)
    "llm_turn",
    "tool_call",
    # engine
    "llm_queued",
    "llm_admitted",
    "llm_prefill",
    "llm_first_token",
    "llm_finished",
    "kv",
    "engine_step",
    "model_load",
    # a cluster's ingress (tether serve --replicas): replica_lost, turn_retried, turn_moved, stream_broken
    "cluster",
]
ENGINE_PROGRAM = "_engine"  # the program_id of engine-wide events (engine_step) and of requests without one
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TraceEvent:
    kind: EventKind
    program_id: str
    ts: float
    node_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    start: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "program_id": self.program_id,
            "node_id": self.node_id,
            "ts": self.ts,
            "start": self.start,
            "attrs": self.attrs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceEvent:
        """``ValueError`` naming what is wrong for an object that is not an event."""
        if not isinstance(data, dict):
            raise ValueError(f"expected an event object, got {type(data).__name__}")
        if data.get("kind") not in EVENT_KINDS:
            raise ValueError(f"unknown trace event kind {data.get('kind')!r}")
        if not isinstance(data.get("program_id"), str):
            raise ValueError("program_id must be a string")
        ts, start = data.get("ts"), data.get("start")
        if not isinstance(ts, (int, float)) or (start is not None and not isinstance(start, (int, float))):
            raise ValueError("ts and start must be numbers")
        attrs = data.get("attrs") or {}
        if not isinstance(attrs, dict):
            raise ValueError("attrs must be an object")
        return cls(data["kind"], data["program_id"], float(ts), data.get("node_id"), attrs, start)
