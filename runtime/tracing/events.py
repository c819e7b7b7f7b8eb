"""``TraceEvent``: one step of a program run, as the executor emits it and the trace store keeps it.

Kinds and their ``attrs``:

| kind | when | attrs |
|---|---|---|
| ``program_start`` | a run begins | ``program``, ``nodes``, ``critical_path_s`` |
| ``program_end`` | it ends | ``status`` (ok / failed / cancelled), ``duration_s``, ``error`` when failed |
| ``node_start`` | its inputs are ready and it starts | ``node_kind`` (llm / tool), ``level``, ``deps`` (node ids) |
| ``node_end`` | it produced its output | ``duration_s``, ``output`` (JSON, cut to 2,000 chars) |
| ``node_error`` | it failed (its program fails unless ``on_error=value``) | ``duration_s``, ``error_type``, ``error`` |
| ``node_cancelled`` | it was running when its program failed or was cancelled | ``duration_s`` |
| ``llm_turn`` | one LLM call returned | ``backend``, ``duration_s``, the hints, ``gen_ai.*`` usage attributes |
| ``tool_call`` | one try of a tool call ended | ``tool``, ``call_id``, ``attempt``, ``status``, ``duration_s`` |

A ``tool_call``'s ``status`` is ok, timeout or error (then ``error`` holds the message).

``ts`` is wall-clock seconds (``time.time()``) at emission; for ``*_end``, ``node_error``, ``llm_turn`` and
``tool_call`` the step started ``duration_s`` earlier. LLM turn attributes follow OpenTelemetry's ``gen_ai``
names (``gen_ai.request.max_tokens``, ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "program_start",
    "program_end",
    "node_start",
    "node_end",
    "node_error",
    "node_cancelled",
    "llm_turn",
    "tool_call",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TraceEvent:
    kind: EventKind
    program_id: str
    ts: float
    node_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "program_id": self.program_id,
            "node_id": self.node_id,
            "ts": self.ts,
            "attrs": self.attrs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceEvent:
        if data.get("kind") not in EVENT_KINDS:
            raise ValueError(f"unknown trace event kind {data.get('kind')!r}")
        return cls(data["kind"], data["program_id"], data["ts"], data.get("node_id"), data.get("attrs") or {})
