"""``LLMEngine.stats()``: the engine's state now (gauges) and its counters since the previous call (returned and
reset, as vLLM's ``make_stats``), in one frozen value read on the engine's thread."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.kvcache import KVCacheManager
    from tether.runtime.engine.scheduler import Scheduler
    from tether.runtime.programs.layer import ProgramManager


@dataclass(frozen=True)
class EngineLoad:
    """What a router reads of a replica: its queue and its GPU KV blocks."""

    waiting: int
    running: int
    free_blocks: int
    num_blocks: int


@dataclass(frozen=True)
class EngineCounters:
    """Events since the previous ``stats()`` (all of them, on the first call)."""

    prefill_tokens_computed: int = 0  # computed tokens at positions inside a prompt (recomputes included)
    cache_hit_tokens: int = 0  # prompt tokens served by the prefix cache at admission
    preemptions: int = 0
    pins_created: int = 0
    pins_hit: int = 0
    pins_expired: int = 0
    pins_dropped: int = 0
    parked_pins: int = 0
    swapped_preemptions: int = 0
    swaps_over_budget: int = 0
    offloaded_blocks: int = 0  # blocks queued for a GPU -> CPU copy

    def __add__(self, other: EngineCounters) -> EngineCounters:
        return EngineCounters(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class EngineStats:
    running: int = 0  # requests in the running batch
    waiting: int = 0  # requests waiting for admission
    programs: int = 0  # programs the engine tracks
    # KV blocks by state: used / pinned / cached / free (GPU), cpu_used / cpu_free (the host tier)
    kv_blocks: dict[str, int] = field(default_factory=dict)
    counters: EngineCounters = EngineCounters()


class StatsWindow:
    """Turns the parts' running totals into counters since the last ``take``."""

    def __init__(self) -> None:
        self._seen = EngineCounters()

    def take(self, scheduler: Scheduler, kv: KVCacheManager, programs: ProgramManager) -> EngineStats:
        total = _totals(scheduler, kv, programs)
        since = EngineCounters(**{k: v - getattr(self._seen, k) for k, v in asdict(total).items()})
        self._seen = total
        return EngineStats(
            running=len(scheduler.running),
            waiting=len(scheduler.waiting),
            programs=len(programs.programs),
            kv_blocks={
                "used": kv.num_used_blocks,
                "pinned": kv.num_pinned_blocks,
                "cached": kv.num_cached_blocks,
                "free": kv.num_free_blocks,
                "cpu_used": kv.num_cpu_blocks - kv.num_free_cpu_blocks,
                "cpu_free": kv.num_free_cpu_blocks,
            },
            counters=since,
        )


def _totals(scheduler: Scheduler, kv: KVCacheManager, programs: ProgramManager) -> EngineCounters:
    sched, prog = scheduler.stats, programs.stats
    return EngineCounters(
        prefill_tokens_computed=sched.prefill_tokens_computed,
        cache_hit_tokens=sched.cache_hit_tokens,
        preemptions=sched.preemptions,
        pins_created=prog.pins_created,
        pins_hit=prog.pins_hit,
        pins_expired=prog.pins_expired,
        pins_dropped=prog.pins_dropped,
        parked_pins=prog.parked_pins,
        swapped_preemptions=prog.swapped_preemptions,
        swaps_over_budget=prog.swaps_over_budget,
        offloaded_blocks=kv.stats().blocks_to_cpu,
    )
