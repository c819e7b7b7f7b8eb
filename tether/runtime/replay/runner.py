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


def build_engine(settings: ReplaySettings, policy: str) -> tuple[LLMEngine, VirtualClock | RealClock]:
    """The engine (and its clock) that one policy's replay runs on; torch is imported here, not with the
    module."""
    from tether.runtime.engine.llm_engine import LLMEngine

    config = replace(settings.engine, policy=policy)
    if settings.simulate:
        assert settings.cost_model is not None
        clock = VirtualClock()
        return LLMEngine(config, backend=SimBackend(settings.cost_model, clock), clock=clock.now), clock
    clock = RealClock()
    return LLMEngine(config, clock=clock.now), clock


def run_policy(
    settings: ReplaySettings,
    policy: str,
    programs: list[TraceProgram],
    arrivals: Arrivals,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    engine, clock = build_engine(settings, policy)
    trace = settings.trace(settings.label(policy)) if settings.trace is not None else None
    engine.trace_to(trace)
    start = clock.now()
    runs = ReplayDriver(
        engine,
        programs,
        arrivals,
        clock,
        seed=settings.seed,
        on_progress=on_progress,
        hints=settings.hints,
        trace=trace,
    ).run()
    makespan = clock.now() - start
    result = summarize(policy, engine, runs, makespan, settings.window)
    result["label"] = settings.label(policy)
    result["hints"] = settings.hints
    return result


def summarize(
    policy: str, engine: LLMEngine, runs: list[ReplayProgramRun], makespan: float, window: float = 0.0
) -> dict:
    """One result row. JCT figures count the programs inside the measurement window; token and pin counts
    cover the whole run."""
    engine.check_integrity()
    sched, prog = engine.scheduler.stats, engine.programs.stats
    kv = engine.kv_manager
    leaked = kv.num_used_blocks + (
        kv.num_cpu_blocks - kv.num_free_cpu_blocks
    )  # held after every program ended
    return {
        "policy": policy,
        **jct_figures(runs, makespan, window),
        "prompt_tokens": sum(r.prompt_tokens for r in runs),
        "prefill_tokens_computed": sched.prefill_tokens_computed,
        "cache_hit_tokens": sched.cache_hit_tokens,
        "pins_created": prog.pins_created,
        "pins_hit": prog.pins_hit,
        "pins_expired": prog.pins_expired,
        "pins_dropped": prog.pins_dropped,
        "offloaded_blocks": kv.stats().blocks_to_cpu,
        "parked_pins": prog.parked_pins,
        "swapped_preemptions": prog.swapped_preemptions,
        "kv_leaked_blocks": leaked,
        "preemptions": sched.preemptions,
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
    for policy in settings.policies:
        t0 = time.perf_counter()
        progress = (lambda done, total, p=policy: on_progress(p, done, total)) if on_progress else None
        result = run_policy(settings, policy, programs, arrivals, progress)
        result["wall_s"] = time.perf_counter() - t0
        results.append(result)
    return results
