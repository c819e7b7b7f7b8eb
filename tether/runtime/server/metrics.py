"""``/metrics`` in Prometheus text format. Request and token counters are counted by the server as requests
finish; the engine's state (queue depth, KV blocks) and its counters (pins by outcome) come from
``LLMEngine.stats()``, read on the engine thread (one consistent step boundary). ``stats()`` returns its counters
since the previous call, so the server adds each read into running totals (``observe``): a Prometheus counter is
cumulative, and ``/integrity`` may read the engine between two scrapes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.runtime.engine.outputs import RequestMetrics
from tether.runtime.engine.stats import EngineCounters, EngineStats
from tether.runtime.server.outcome import ToolTime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PIN_OUTCOMES = {  # tether_kv_pins{outcome}: the engine's counter
    "created": "pins_created",
    "hit": "pins_hit",
    "expired": "pins_expired",
    "dropped": "pins_dropped",
    "parked": "parked_pins",
}


class EngineCollector(Collector):
    """The engine's gauges (``latest``) and cumulative counters (``totals``) as Prometheus metrics; a cluster's
    ingress sets both to the sums over its replicas."""

    def __init__(self) -> None:
        self.latest = EngineStats()
        self.totals = EngineCounters()

    def collect(self) -> Iterator[Metric]:
        s = self.latest
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
        for outcome, counter in PIN_OUTCOMES.items():
            pins.add_metric([outcome], getattr(self.totals, counter))
        yield pins


SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5)
TOKEN_BUCKETS = (1, 8, 32, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class RequestHistograms:
    """What vLLM users chart, per finished request: time to first token, the decode interval, queue time,
    end-to-end latency, prompt and generated tokens (``observe``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def seconds(name: str, text: str, buckets=SECONDS_BUCKETS) -> Histogram:
            return Histogram(name, text, buckets=buckets, registry=registry)

        self.ttft = seconds("tether_time_to_first_token_seconds", "Arrival to the first generated token")
        self.itl = seconds(
            "tether_inter_token_latency_seconds",
            "A request's mean interval between generated tokens, observed once per interval",
            ITL_BUCKETS,
        )
        self.queued = seconds("tether_request_queue_time_seconds", "Arrival to the first step that ran it")
        self.e2e = seconds("tether_e2e_request_latency_seconds", "Arrival to the last token")
        self.prompt = Histogram(
            "tether_request_prompt_tokens",
            "Prompt tokens per request",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.generated = Histogram(
            "tether_request_generation_tokens",
            "Generated tokens per request",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )

    def observe(self, metrics: RequestMetrics, prompt: int, generated: int) -> None:
        self.prompt.observe(prompt)
        self.generated.observe(generated)
        if metrics.queued is not None:
            self.queued.observe(metrics.queued)
        if metrics.ttft is not None:
            self.ttft.observe(metrics.ttft)
        if metrics.finish_time is not None:
            self.e2e.observe(max(0.0, metrics.finish_time - metrics.arrival_time))
            if metrics.first_token_time is not None and generated > 1:
                gap = max(0.0, metrics.finish_time - metrics.first_token_time) / (generated - 1)
                for _ in range(generated - 1):
                    self.itl.observe(gap)


RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0, 10.0)


class ToolTimeHistograms:
    """Tool time as Tether's scheduler sees it (``observe``, once per timed call of a remote client): the actual
    pause, the mean the tool statistics predicted when the call began, their ratio, and whether the call ended
    within the predicted p95 (the horizon a ``keep=ttl`` pin covers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.actual = Histogram(
            "tether_tool_time_seconds",
            "A remote client's tool call: from the turn that called it to the program's next request",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.predicted = Histogram(
            "tether_tool_time_predicted_seconds",
            "The mean tool time the statistics predicted when the call began",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.ratio = Histogram(
            "tether_tool_time_actual_over_predicted",
            "Actual tool time over the predicted mean (1: exact; above: longer than predicted)",
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.p95 = Counter(
            "tether_tool_time_predictions",
            "Timed tool calls by whether they ended within the predicted p95",
            ["p95"],
            registry=registry,
        )

    def observe(self, timed: ToolTime) -> None:
        self.actual.observe(timed.actual_s)
        self.predicted.observe(timed.mean_s)
        if timed.mean_s > 0:
            self.ratio.observe(timed.actual_s / timed.mean_s)
        self.p95.labels("within" if timed.actual_s <= timed.p95_s else "beyond").inc()


def requests_counter(registry: CollectorRegistry) -> Counter:
    """``tether_requests_total{endpoint, status}``: HTTP API requests (one server's, or a cluster's ingress)."""
    return Counter(
        "tether_requests",
        "HTTP API requests by endpoint and status",
        ["endpoint", "status"],
        registry=registry,
    )


@dataclass(frozen=True)
class MetricsReport:
    """``ServerMetrics.report()``: ``engine``: the last ``stats()`` read (its gauges); ``totals``: the engine's
    counters since the start; ``usage``: prompt, generated and cache-hit tokens; ``ended``: programs ended by
    reason."""

    engine: EngineStats
    totals: EngineCounters
    usage: dict[str, int]
    ended: dict[str, int]


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = requests_counter(self.registry)
        self.prompt_tokens = Counter("tether_prompt_tokens", "Prompt tokens", registry=self.registry)
        self.generation_tokens = Counter(
            "tether_generation_tokens", "Generated tokens", registry=self.registry
        )
        self.cache_hit_tokens = Counter(
            "tether_cache_hit_tokens", "Prompt tokens served by the prefix cache", registry=self.registry
        )
        self.latency = RequestHistograms(self.registry)
        self.tool_times = ToolTimeHistograms(self.registry)
        self.programs_ended = Counter(
            "tether_programs_ended", "Programs ended by the server", ["reason"], registry=self.registry
        )
        self._engine = EngineCollector()
        self.registry.register(self._engine)
        # the same counts as plain numbers, for a cluster's ingress (``report``)
        self.usage_totals = {"prompt_tokens": 0, "generation_tokens": 0, "cache_hit_tokens": 0}
        self.ended_totals: dict[str, int] = {}

    def usage(self, prompt: int, generated: int, cached: int) -> None:
        self.prompt_tokens.inc(prompt)
        self.generation_tokens.inc(generated)
        self.cache_hit_tokens.inc(cached)
        for key, n in (
            ("prompt_tokens", prompt),
            ("generation_tokens", generated),
            ("cache_hit_tokens", cached),
        ):
            self.usage_totals[key] += n

    def program_ended(self, reason: str) -> None:
        self.programs_ended.labels(reason).inc()
        self.ended_totals[reason] = self.ended_totals.get(reason, 0) + 1

    def report(self) -> MetricsReport:
        """The engine's last read and every cumulative count, as one value (a replica's answer to its
        cluster's ingress)."""
        return MetricsReport(
            self._engine.latest, self._engine.totals, dict(self.usage_totals), dict(self.ended_totals)
        )

    def observe(self, stats: EngineStats) -> EngineStats:
        """Take an ``LLMEngine.stats()`` read: its gauges replace the last, its counters add to the totals."""
        self._engine.latest = stats
        self._engine.totals = self._engine.totals + stats.counters
        return stats

    def render(self) -> bytes:
        return generate_latest(self.registry)
