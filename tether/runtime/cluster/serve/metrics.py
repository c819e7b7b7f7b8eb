"""The cluster's ``/metrics``: the same names as one server's (``tether.runtime.server.metrics``), summed over the
replicas, and the cluster's own: live replicas, replicas lost, turns sent again after a loss, turns moved off
their program's replica, streams cut by a loss.

Counters are cumulative over the run: a replica's last report is kept after it dies, so no counter goes back.
Gauges (queue, KV blocks, programs) sum the live replicas only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.runtime.engine.stats import EngineCounters, EngineStats
from tether.runtime.server.metrics import EngineCollector, MetricsReport, requests_counter

USAGE_HELP = {
    "prompt_tokens": "Prompt tokens",
    "generation_tokens": "Generated tokens",
    "cache_hit_tokens": "Prompt tokens served by the prefix cache",
}


class _ClusterCollector(Collector):
    def __init__(self) -> None:
        self.usage: dict[str, int] = dict.fromkeys(USAGE_HELP, 0)
        self.ended: dict[str, int] = {}
        self.live = 0
        self.lost = 0
        self.moved = 0

    def collect(self) -> Iterator[Metric]:
        for key, text in USAGE_HELP.items():
            yield CounterMetricFamily(f"tether_{key}", text, value=self.usage.get(key, 0))
        ended = CounterMetricFamily(
            "tether_programs_ended", "Programs ended by the server", labels=["reason"]
        )
        for reason, n in sorted(self.ended.items()):
            ended.add_metric([reason], n)
        yield ended
        yield GaugeMetricFamily("tether_replicas", "Live engine replicas", value=self.live)
        yield CounterMetricFamily("tether_replicas_lost", "Replicas that died or left", value=self.lost)
        yield CounterMetricFamily(
            "tether_turns_moved", "Turns the router moved off their program's replica", value=self.moved
        )


class ClusterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = requests_counter(self.registry)
        self.turns_retried = Counter(
            "tether_turns_retried", "Requests sent again because their replica died", registry=self.registry
        )
        self.streams_broken = Counter(
            "tether_streams_broken", "Streamed responses cut by their replica's death", registry=self.registry
        )
        self._engine = EngineCollector()
        self._cluster = _ClusterCollector()
        self.registry.register(self._engine)
        self.registry.register(self._cluster)
        self.reports: dict[str, MetricsReport] = {}  # every replica's last report, the dead ones' too

    def observe(self, reports: Mapping[str, MetricsReport], lost: int, moved: int) -> None:
        """Take the live replicas' reports (by replica id) and the router's counts."""
        self.reports.update(reports)
        everyone = list(self.reports.values())
        self._engine.latest = _sum_gauges([r.engine for r in reports.values()])
        self._engine.totals = sum((r.totals for r in everyone), EngineCounters())
        c = self._cluster
        c.usage = {k: sum(r.usage.get(k, 0) for r in everyone) for k in USAGE_HELP}
        c.ended = {}
        for r in everyone:
            for reason, n in r.ended.items():
                c.ended[reason] = c.ended.get(reason, 0) + n
        c.live, c.lost, c.moved = len(reports), lost, moved

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _sum_gauges(stats: list[EngineStats]) -> EngineStats:
    blocks: dict[str, int] = {}
    for s in stats:
        for state, n in s.kv_blocks.items():
            blocks[state] = blocks.get(state, 0) + n
    return EngineStats(
        running=sum(s.running for s in stats),
        waiting=sum(s.waiting for s in stats),
        programs=sum(s.programs for s in stats),
        kv_blocks=blocks,
    )
