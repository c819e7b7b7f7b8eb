"""``tether:prefetch=on`` on the engine: a program parked under pressure comes back to GPU memory before its tool
returns, while another turn keeps the engine stepping; off (the default) it stays parked until its turn."""

from __future__ import annotations

import pytest

from tests.replay.test_replay import program
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.replay.driver import Arrivals, ReplayDriver
from tether.runtime.sim.backend import SimBackend
from tether.runtime.sim.clock import VirtualClock

# a: 100 blocks, then a 5 s tool; c: a long decode that keeps the engine stepping; b: 100 blocks at 0.1 s, which
# only fit once a's pin leaves the GPU
PROGRAMS = [
    program("a", [(0, 4, "slow", 5.0), (8, 4, None, None)], first_prompt=1600),
    program("c", [(0, 1000, None, None)], first_prompt=16),
    program("b", [(0, 4, None, None)], first_prompt=1600),
]


@pytest.mark.parametrize(("policy", "prefetched"), [("tether", False), ("tether:prefetch=on", True)])
def test_a_parked_program_is_prefetched_only_when_asked(policy, prefetched):
    clock = VirtualClock()
    driver = ReplayDriver(PROGRAMS, Arrivals(times=(0.0, 0.0, 0.1)), clock)
    engine = build_engine(
        EngineConfig(num_kv_blocks=200, num_cpu_kv_blocks=200, policy=policy),
        backend=SimBackend(H100_LLAMA31_8B, clock),
        clock=clock.now,
        turn_outcome=driver.outcome,
        tool_stats=driver.tool_stats,
    )
    events = []
    engine.programs.on_kv_event = lambda pid, action, attrs: events.append((pid, action))
    runs = driver.run(engine)
    assert all(r.ended for r in runs)
    assert ("a", "parked") in events
    assert (("a", "prefetched") in events) is prefetched
    engine.check_integrity()
