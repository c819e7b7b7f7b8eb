"""One line of the run list: a run's status, kind, programs, duration, tokens and cache-hit rate.

Rules (docs/tracing.md, "The UI"): ``programs`` counts ``program_start`` events (the distinct program ids of a
trace without any, as a replay's engine-only trace); tokens are the ``gen_ai.usage.*`` of ``llm_turn`` events,
or of ``llm_finished`` (``input_tokens``, ``output_tokens``, ``cached_tokens``) in a trace without any
``llm_turn`` (replay and serve runs); the cache-hit rate is cache-read over input tokens. A run with several
traces (a replay: one per policy) sums them and lists each under ``traces``.
"""

from __future__ import annotations

import time
from typing import Any

from tether.runtime.tracing import ENGINE_PROGRAM, TraceEvent

_TURN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
)
_FINISHED_KEYS = ("input_tokens", "output_tokens", "cached_tokens")


def trace_summary(events: list[TraceEvent]) -> dict[str, Any]:
    starts = sum(1 for e in events if e.kind == "program_start")
    programs = starts or len({e.program_id for e in events if e.program_id != ENGINE_PROGRAM})
    turns = [e for e in events if e.kind == "llm_turn"]
    source, keys = (
        (turns, _TURN_KEYS) if turns else ([e for e in events if e.kind == "llm_finished"], _FINISHED_KEYS)
    )
    totals = [sum(_int(e.attrs.get(k)) for e in source) for k in keys]
    return _tokens(programs, *totals)


def run_summary(meta: dict[str, Any], traces: dict[str, list[TraceEvent]]) -> dict[str, Any]:
    per_trace = {name: trace_summary(events) for name, events in traces.items()}
    totals = _tokens(*(sum(t[k] for t in per_trace.values()) for k in _SUMMED))
    return {
        "run_id": meta.get("run_id"),
        "kind": meta.get("kind"),
        "name": meta.get("name"),
        "status": meta.get("status"),
        "command": meta.get("command"),
        "started": meta.get("started"),
        "ended": meta.get("ended"),
        "duration_s": duration_s(meta),
        **totals,
        "traces": per_trace if len(per_trace) > 1 else {},
        "error": None,
    }


def duration_s(meta: dict[str, Any]) -> float | None:
    started, ended = meta.get("started"), meta.get("ended")
    if not isinstance(started, (int, float)):
        return None
    if isinstance(ended, (int, float)):
        return ended - started
    return time.time() - started if meta.get("status") == "running" else None


_SUMMED = ("programs", "input_tokens", "output_tokens", "cache_read_tokens")


def _tokens(programs: int, input_tokens: int, output_tokens: int, cache_read: int) -> dict[str, Any]:
    return {
        "programs": programs,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_hit_rate": cache_read / input_tokens if input_tokens else None,
    }


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
