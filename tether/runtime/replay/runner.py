"""``tether replay``: every policy on the same programs and the same seeded arrivals, on the real engine or in
simulated time; one result row per policy (the rows of ``tether replay --json``)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tether.runtime.costs import CostModel
from tether.runtime.engine.config import EngineConfig
from tether.runtime.replay.driver import TRUE_TURNS, Arrivals, ReplayDriver, ReplayProgramRun
from tether.runtime.replay.workload import TraceProgram
from tether.runtime.sim.backend import SimBackend
from tether.runtime.sim.clock import RealClock, VirtualClock
from tether.runtime.tracing.writer import TraceSink

if TYPE_CHECKING:
    from tether.runtime.engine.llm_engine import LLMEngine


@dataclass(frozen=True)
class ReplaySettings:
    policies: tuple[str, ...]
    engine: EngineConfig
    rate: float | None = None  # programs per second (Poisson); None with concurrency
    concurrency: int | None = None
    seed: int = 0
    simulate: bool = False
    cost_model: CostModel | None = None  # simulation only
    hints: str = "online"  # "oracle": the true remaining turns, labelled +true-turns (see ProgramHints)
    window: float = 0.0  # fraction of programs, by arrival, left out of the averages at each end
    trace: Callable[[str], TraceSink] | None = None  # a policy's label -> the sink of its trace (--trace)
    replicas: int | None = None  # a simulated cluster of this many engines behind each of ``routers``
    routers: tuple[str, ...] = ("program",)

    def arrivals(self, n: int) -> Arrivals:
        if self.concurrency is not None:
            return Arrivals(concurrency=self.concurrency)
        return Arrivals.poisson(n, self.rate or 1.0, self.seed)

    def label(self, policy: str) -> str:
        """How a policy is named in tables: runs told the true remaining turns carry ``+true-turns``."""
        return f"{policy}{TRUE_TURNS}" if self.hints == "oracle" else policy


def measured_window(n: int, window: float) -> range:
    """Indices, in arrival order, of the programs the averages count: the first and the last
    ``floor(window * n)`` are left out (warm-up: the engine starts empty; cool-down: the queue drains)."""
    if not 0.0 <= window < 0.5:
        raise ValueError(f"window must be in [0, 0.5), got {window}")
    k = int(window * n)
    return range(k, n - k)


def replay_engine(
    settings: ReplaySettings, policy: str, clock: VirtualClock | RealClock, driver: ReplayDriver
) -> LLMEngine:
    """The engine that one policy's replay runs on, on ``clock``, told by ``driver`` what each turn's output
    says and reading the tool durations the driver records; torch is imported here, not with the module."""
    from tether.runtime.engine.builder import build_engine

    config = replace(settings.engine, policy=policy)
    parts = {"clock": clock.now, "turn_outcome": driver.outcome, "tool_stats": driver.tool_stats}
    if settings.simulate:
        assert settings.cost_model is not None and isinstance(clock, VirtualClock)
        return build_engine(config, backend=SimBackend(settings.cost_model, clock), **parts)
    return build_engine(config, **parts)


def run_policy(
    settings: ReplaySettings,
    policy: str,
    programs: list[TraceProgram],
    arrivals: Arrivals,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    clock = VirtualClock() if settings.simulate else RealClock()
    trace = settings.trace(settings.label(policy)) if settings.trace is not None else None
    driver = ReplayDriver(
        programs, arrivals, clock, seed=settings.seed, on_progress=on_progress, hints=settings.hints, trace=trace
    )
    engine = replay_engine(settings, policy, clock, driver)
    engine.trace_to(trace)
    start = clock.now()
    runs = driver.run(engine)
    makespan = clock.now() - start
    result = summarize(policy, engine, runs, makespan, settings.window)
    result["label"] = settings.label(policy)
    result["hints"] = settings.hints
    return result


def summarize(
    policy: str, engine: LLMEngine, runs: list[ReplayProgramRun], makespan: float, window: float = 0.0
) -> dict:
    """One result row. JCT figures count the programs inside the measurement window; token and pin counts
    cover the whole run (the engine's first ``stats()``: its counters since it was built)."""
    engine.check_integrity()
    stats = engine.stats()
    c = stats.counters
    leaked = stats.kv_blocks["used"] + stats.kv_blocks["cpu_used"]  # held after every program ended
    return {
        "policy": policy,
        **jct_figures(runs, makespan, window),
        "prompt_tokens": sum(r.prompt_tokens for r in runs),
        "prefill_tokens_computed": c.prefill_tokens_computed,
        "cache_hit_tokens": c.cache_hit_tokens,
        "pins_created": c.pins_created,
        "pins_hit": c.pins_hit,
        "pins_expired": c.pins_expired,
        "pins_dropped": c.pins_dropped,
        "offloaded_blocks": c.offloaded_blocks,
        "parked_pins": c.parked_pins,
        "swapped_preemptions": c.swapped_preemptions,
        "kv_leaked_blocks": leaked,
        "preemptions": c.preemptions,
    }


def jct_figures(runs: list[ReplayProgramRun], makespan: float, window: float = 0.0) -> dict:
    """The completion-time part of a result row (in-process or over HTTP): JCT figures count the programs
    inside the measurement window, throughput all of them."""
    by_arrival = sorted(runs, key=lambda r: r.arrival)
    jcts = sorted(by_arrival[i].jct for i in measured_window(len(runs), window))
    return {
        "programs": len(runs),
        "programs_measured": len(jcts),
        "avg_jct_s": statistics.mean(jcts),
        "p50_jct_s": quantile(jcts, 0.5),
        "p90_jct_s": quantile(jcts, 0.9),
        "makespan_s": makespan,
        "throughput_programs_per_min": 60.0 * len(runs) / makespan if makespan > 0 else math.inf,
    }


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest rank."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def solo_jct(settings: ReplaySettings, programs: list[TraceProgram], memo: dict | None = None) -> float:
    """The lower bound: each program alone on the engine (``vllm``, nothing contends), average JCT over the
    programs inside the measurement window. ``memo`` (turns -> JCT) skips programs drawn more than once."""
    memo = {} if memo is None else memo
    solo = replace(settings, hints="online", window=0.0, trace=None)
    jcts = []
    for i in measured_window(len(programs), settings.window):  # programs arrive in list order
        p = programs[i]
        if p.turns not in memo:
            memo[p.turns] = run_policy(solo, "vllm", [p], Arrivals(times=(0.0,)))["avg_jct_s"]
        jcts.append(memo[p.turns])
    return statistics.mean(jcts)


def run_replay(
    settings: ReplaySettings,
    programs: list[TraceProgram],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    arrivals = settings.arrivals(len(programs))
    results = []
    if settings.replicas is not None:
        return _run_cluster(settings, programs, arrivals, on_progress)
    for policy in settings.policies:
        t0 = time.perf_counter()
        progress = (lambda done, total, p=policy: on_progress(p, done, total)) if on_progress else None
        result = run_policy(settings, policy, programs, arrivals, progress)
        result["wall_s"] = time.perf_counter() - t0
        results.append(result)
    return results


def _run_cluster(settings, programs, arrivals, on_progress) -> list[dict]:
    """Every (policy, router) pair on the simulated cluster; each row labelled ``policy@router``."""
    from tether.runtime.cluster.replay import run_cluster_policy

    results = []
    for policy in settings.policies:
        for router in settings.routers:
            label = f"{settings.label(policy)}@{router}"
            t0 = time.perf_counter()
            progress = (lambda done, total, p=label: on_progress(p, done, total)) if on_progress else None
            result = run_cluster_policy(settings, policy, router, programs, arrivals, progress)
            result.update(label=label, hints=settings.hints, wall_s=time.perf_counter() - t0)
            results.append(result)
    return results
