"""``/metrics`` in Prometheus text format. Request and token counters are counted by the server as requests
finish; the engine's state (queue depth, KV blocks, pins by outcome) is read from the engine thread at scrape
time (``EngineSnapshot``) and exposed by a collector, so a scrape sees one consistent step boundary."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tether.runtime.engine.llm_engine import LLMEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class EngineSnapshot:
    running: int = 0
    waiting: int = 0
    kv_blocks: dict[str, int] = field(
        default_factory=dict
    )  # used / pinned / cached / free / cpu_used / cpu_free
    pins: dict[str, int] = field(default_factory=dict)  # created / hit / expired / dropped / parked
    programs: int = 0

    @staticmethod
    def of(engine: LLMEngine) -> EngineSnapshot:
        """Read on the engine thread (``AsyncEngine.call``)."""
        kv, stats = engine.kv_manager, engine.programs.stats
        return EngineSnapshot(
            running=len(engine.scheduler.running),
            waiting=len(engine.scheduler.waiting),
            kv_blocks={
                "used": kv.num_used_blocks,
                "pinned": kv.num_pinned_blocks,
                "cached": kv.num_cached_blocks,
                "free": kv.num_free_blocks,
                "cpu_used": kv.num_cpu_blocks - kv.num_free_cpu_blocks,
                "cpu_free": kv.num_free_cpu_blocks,
            },
            pins={
                "created": stats.pins_created,
                "hit": stats.pins_hit,
                "expired": stats.pins_expired,
                "dropped": stats.pins_dropped,
                "parked": stats.parked_pins,
            },
            programs=len(engine.programs.programs),
        )


class _EngineCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = EngineSnapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily("tether_requests_running", "Requests in the running batch", value=s.running)
        yield GaugeMetricFamily(
            "tether_requests_waiting", "Requests waiting for admission (queue depth)", value=s.waiting
        )
        yield GaugeMetricFamily("tether_programs", "Programs the engine tracks", value=s.programs)
        blocks = GaugeMetricFamily("tether_kv_blocks", "KV cache blocks by state", labels=["state"])
        for state, n in s.kv_blocks.items():
            blocks.add_metric([state], n)
        yield blocks
        pins = CounterMetricFamily("tether_kv_pins", "KV pins by outcome", labels=["outcome"])
        for outcome, n in s.pins.items():
            pins.add_metric([outcome], n)
        yield pins


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tether_requests",
            "HTTP API requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter("tether_prompt_tokens", "Prompt tokens", registry=self.registry)
        self.generation_tokens = Counter(
            "tether_generation_tokens", "Generated tokens", registry=self.registry
        )
        self.cache_hit_tokens = Counter(
            "tether_cache_hit_tokens", "Prompt tokens served by the prefix cache", registry=self.registry
        )
        self.programs_ended = Counter(
            "tether_programs_ended", "Programs ended by the server", ["reason"], registry=self.registry
        )
        self._engine = _EngineCollector()
        self.registry.register(self._engine)

    def usage(self, prompt: int, generated: int, cached: int) -> None:
        self.prompt_tokens.inc(prompt)
        self.generation_tokens.inc(generated)
        self.cache_hit_tokens.inc(cached)

    def render(self, snapshot: EngineSnapshot) -> bytes:
        self._engine.snapshot = snapshot
        return generate_latest(self.registry)
