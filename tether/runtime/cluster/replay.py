"""One policy's replay on a simulated cluster: ``replicas`` engines behind ``router`` (``sim.py``), and its row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tether.runtime.cluster.routers import get_router
from tether.runtime.cluster.sim import ClusterClock, ClusterDriver, ClusterEngines
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.runner import jct_figures
from tether.runtime.replay.workload import TraceProgram
from tether.runtime.sim.backend import SimBackend

if TYPE_CHECKING:
    from tether.runtime.replay.runner import ReplaySettings


def run_cluster_policy(
    settings: ReplaySettings,
    policy: str,
    router: str,
    programs: list[TraceProgram],
    arrivals: Arrivals,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The row of ``policy`` on ``settings.replicas`` simulated engines behind ``router``."""
    from tether.runtime.engine.builder import build_engine

    assert settings.simulate and settings.cost_model is not None, "the cluster runs in simulation only"
    clock = ClusterClock()
    driver = ClusterDriver(programs, arrivals, clock, seed=settings.seed, on_progress=on_progress, hints=settings.hints)
    config = replace(settings.engine, policy=policy)

    def build(rclock):
        backend = SimBackend(settings.cost_model, rclock)
        return build_engine(
            config, backend=backend, clock=rclock.now, turn_outcome=driver.outcome, tool_stats=driver.tool_stats
        )

    cluster = ClusterEngines(build, settings.replicas, get_router(router, settings.seed), clock)
    runs = driver.run_cluster(cluster)
    return _row(settings, policy, router, cluster, runs, clock.now())


def _row(settings, policy: str, router: str, cluster: ClusterEngines, runs, makespan: float) -> dict:
    totals, leaked, busy = None, 0, []
    for replica in cluster.replicas.values():
        replica.engine.check_integrity()
        stats = replica.engine.stats()
        totals = stats.counters if totals is None else totals + stats.counters
        leaked += stats.kv_blocks["used"] + stats.kv_blocks["cpu_used"]
        busy.append(replica.busy_s)
    prompt = sum(r.prompt_tokens for r in runs)
    mean_busy = sum(busy) / len(busy)
    return {
        "policy": policy,
        "router": router,
        "replicas": settings.replicas,
        **jct_figures(runs, makespan, settings.window),
        "prompt_tokens": prompt,
        "prefill_tokens_computed": totals.prefill_tokens_computed,
        "cache_hit_tokens": totals.cache_hit_tokens,
        "cached_fraction": totals.cache_hit_tokens / prompt if prompt else 0.0,
        "pins_created": totals.pins_created,
        "pins_hit": totals.pins_hit,
        "pins_expired": totals.pins_expired,
        "pins_dropped": totals.pins_dropped,
        "offloaded_blocks": totals.offloaded_blocks,
        "pin_hit_rate": totals.pins_hit / totals.pins_created if totals.pins_created else 0.0,
        "turns": cluster.counters.turns,
        "moved_turns": cluster.counters.moved,
        "imbalance": max(busy) / mean_busy if mean_busy > 0 else 1.0,
        "kv_leaked_blocks": leaked,
        "preemptions": totals.preemptions,
    }
