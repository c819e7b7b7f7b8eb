"""The cluster's ``/metrics``: sums over the replicas' reports; a dead replica's counts stay in the totals."""

from __future__ import annotations

from tether.runtime.cluster.serve.metrics import ClusterMetrics
from tether.runtime.engine.stats import EngineCounters, EngineStats
from tether.runtime.server.metrics import MetricsReport


def _report(running: int, free: int, created: int, prompt: int, ended: dict[str, int]) -> MetricsReport:
    engine = EngineStats(running=running, kv_blocks={"free": free, "pinned": 1})
    usage = {"prompt_tokens": prompt, "generation_tokens": 1, "cache_hit_tokens": 0}
    return MetricsReport(engine, EngineCounters(pins_created=created), usage, ended)


def _sample(metrics: ClusterMetrics, key: str) -> float:
    for line in metrics.render().decode().splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise KeyError(key)


def test_gauges_sum_the_live_replicas_and_counters_keep_the_dead() -> None:
    m = ClusterMetrics()
    m.observe(
        {"a": _report(2, 10, 3, 100, {"client": 1}), "b": _report(1, 20, 4, 50, {"moved": 2})},
        lost=0,
        moved=2,
    )
    assert _sample(m, "tether_requests_running") == 3
    assert _sample(m, 'tether_kv_blocks{state="free"}') == 30
    assert _sample(m, 'tether_kv_pins_total{outcome="created"}') == 7
    assert _sample(m, "tether_prompt_tokens_total") == 150
    assert _sample(m, 'tether_programs_ended_total{reason="moved"}') == 2
    assert (_sample(m, "tether_replicas"), _sample(m, "tether_turns_moved_total")) == (2, 2)
    m.observe({"b": _report(0, 20, 5, 60, {"moved": 2})}, lost=1, moved=2)  # "a" died
    assert _sample(m, "tether_requests_running") == 0
    assert _sample(m, 'tether_kv_blocks{state="free"}') == 20
    assert _sample(m, 'tether_kv_pins_total{outcome="created"}') == 8  # a's 3 stay counted
    assert _sample(m, "tether_prompt_tokens_total") == 160
    assert (_sample(m, "tether_replicas"), _sample(m, "tether_replicas_lost_total")) == (1, 1)
