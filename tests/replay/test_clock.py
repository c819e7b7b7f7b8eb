"""One clock: a simulation's result does not depend on how long the host has been up.

The engine stamps a request's arrival on its own clock (virtual in a simulation), and every policy compares
times on that clock. Here ``time.monotonic`` reads as on a host booted 50 s ago and as on one up for 11 days:
with a mixed clock, Continuum's queueing delay and Autellix's starvation guard see different (and negative)
waits, and the runs part as soon as the virtual time passes the 50 s (an offset alone would not show it).
"""

from __future__ import annotations

import time

import pytest

from tests.replay.synthetic import busy_programs
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.policies import POLICIES
from tether.runtime.replay.runner import ReplaySettings, run_replay
from tether.runtime.tracing.writer import MemoryTraceSink


def rows(uptime_s: float, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    real = time.monotonic
    t0 = real()
    monkeypatch.setattr(time, "monotonic", lambda: uptime_s + (real() - t0))
    engine = EngineConfig(model="tiny", num_kv_blocks=96, max_num_batched_tokens=512, num_cpu_kv_blocks=96)
    settings = ReplaySettings(
        tuple(POLICIES), engine, rate=3.0, seed=1, simulate=True, cost_model=H100_LLAMA31_8B
    )
    out = run_replay(settings, busy_programs(80))
    monkeypatch.undo()
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in out]


def test_every_policy_gives_the_same_rows_on_a_new_host_and_an_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    booted = rows(50.0, monkeypatch)
    up_for_days = rows(11 * 86400.0, monkeypatch)
    assert [r["policy"] for r in booted] == list(POLICIES)
    assert max(r["makespan_s"] for r in booted) > 100  # the virtual time passes the 50 s
    for new, old in zip(booted, up_for_days):
        assert new == old, new["policy"]


def test_a_simulated_trace_is_on_one_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Driver and engine events share one offset to wall time: no span starts after its event is emitted, no
    duration is negative, and the events of a program come in time order."""
    real = time.monotonic
    t0 = real()
    monkeypatch.setattr(time, "monotonic", lambda: 11 * 86400.0 + (real() - t0))  # a host up for days
    sinks: dict[str, MemoryTraceSink] = {}
    engine = EngineConfig(model="tiny", num_kv_blocks=96, max_num_batched_tokens=512, num_cpu_kv_blocks=96)
    settings = ReplaySettings(
        ("continuum", "tether"), engine, rate=3.0, seed=1, simulate=True, cost_model=H100_LLAMA31_8B,
        trace=lambda label: sinks.setdefault(label, MemoryTraceSink()),
    )  # fmt: skip
    run_replay(settings, busy_programs(20))
    assert set(sinks) == {"continuum", "tether"}
    for sink in sinks.values():
        kinds = {e.kind for e in sink.events}
        assert {"program_start", "tool_call", "llm_turn", "program_end", "llm_admitted", "engine_step"} <= kinds
        for e in sink.events:
            assert e.start is None or e.start <= e.ts + 1e-9, e
            for key in ("duration_s", "queued_s", "ttft_s"):
                assert e.attrs.get(key, 0.0) >= 0.0, e
        first = min(e.ts for e in sink.events)
        assert all(e.ts - first < 3600 for e in sink.events)  # one run, minutes of virtual time, not days
