"""The cluster simulation (tether/runtime/cluster/sim.py): one replica is exactly the single-engine simulation,
and on several the program router keeps programs where their KV is."""

from __future__ import annotations

import pytest

from tests.replay.synthetic import busy_programs
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.replay.runner import ReplaySettings, run_replay

ENGINE = EngineConfig(model="tiny", num_kv_blocks=128, max_num_batched_tokens=512, num_cpu_kv_blocks=128)
SAME = ("avg_jct_s", "p90_jct_s", "makespan_s", "prefill_tokens_computed", "cache_hit_tokens", "pins_created",
        "pins_hit", "preemptions")  # fmt: skip


def settings(policies, rate: float = 1.5, **cluster) -> ReplaySettings:
    return ReplaySettings(
        policies, ENGINE, rate=rate, seed=1, simulate=True, cost_model=H100_LLAMA31_8B, **cluster
    )


@pytest.mark.parametrize("policy", ["vllm", "continuum", "tether"])
def test_one_replica_is_the_single_engine_simulation(policy):
    programs = busy_programs(40)
    (single,) = run_replay(settings((policy,)), programs)
    (cluster,) = run_replay(settings((policy,), replicas=1, routers=("pow2",)), programs)
    assert {k: cluster[k] for k in SAME} == {k: single[k] for k in SAME}
    assert cluster["label"] == f"{policy}@pow2" and cluster["moved_turns"] == 0 and cluster["imbalance"] == 1.0


def test_the_program_router_keeps_programs_on_their_replica():
    programs = busy_programs(90)
    s = settings(("tether",), rate=4.5, replicas=3, routers=("program", "pow2", "session"))  # 1.5/s per replica
    rows = {r["router"]: r for r in run_replay(s, programs)}
    assert all(r["kv_leaked_blocks"] == 0 and r["programs"] == 90 for r in rows.values())
    assert rows["session"]["moved_turns"] == 0  # a hash ring never moves a program
    assert rows["program"]["moved_turns"] < 0.05 * rows["program"]["turns"] < rows["pow2"]["moved_turns"]
    assert rows["program"]["pin_hit_rate"] > rows["pow2"]["pin_hit_rate"]
    assert rows["program"]["cached_fraction"] > rows["pow2"]["cached_fraction"]
