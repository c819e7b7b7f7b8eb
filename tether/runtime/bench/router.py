"""``tether bench router``: a router's decision time at cluster scale (a benchmark, never a timed test).

``replicas`` replicas report random loads; ``programs`` programs are live (each routed once already, so the
routers hold their state); then ``requests`` turns of random programs (a fifth of them new) are routed one by
one, each with a ``prompt_tokens`` prompt, and the replicas' stats change every ``refresh`` turns. The figure is
the wall time of ``route`` plus ``routed`` per turn: median and p99, in microseconds."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from tether.runtime.cluster.replicas import ReplicaStats, RouteRequest
from tether.runtime.cluster.routers import get_router


@dataclass(frozen=True)
class RouterTiming:
    router: str
    replicas: int
    programs: int
    requests: int
    median_us: float
    p99_us: float


def _stats(rng: random.Random, n: int) -> dict[str, ReplicaStats]:
    return {f"r{i}": ReplicaStats(f"r{i}", rng.randrange(32), rng.randrange(6000), 6000) for i in range(n)}


def time_router(
    name: str, replicas: int, programs: int, requests: int, prompt_tokens: int, seed: int = 0, refresh: int = 64
) -> RouterTiming:
    rng = random.Random(seed)
    router = get_router(name, seed)
    stats = _stats(rng, replicas)
    prompts = [tuple(rng.randrange(32000) for _ in range(prompt_tokens)) for _ in range(64)]
    live = [f"p{i}" for i in range(programs)]
    for i, pid in enumerate(live):
        request = RouteRequest(pid, prompts[i % len(prompts)])
        router.routed(request, router.route(request, stats).replica_id)
    times = []
    for k in range(requests):
        if k % refresh == 0:
            stats = _stats(rng, replicas)
        pid = f"new{k}" if rng.random() < 0.2 else rng.choice(live)
        request = RouteRequest(pid, prompts[k % len(prompts)])
        t0 = time.perf_counter()
        router.routed(request, router.route(request, stats).replica_id)
        times.append(time.perf_counter() - t0)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return RouterTiming(name, replicas, programs, requests, statistics.median(times) * 1e6, p99 * 1e6)
