"""Several workers share the load: mosquitto's shared subscriptions, or the client's choice on amqtt."""

from __future__ import annotations

import asyncio

import pytest

from tests.mqtt.conftest import wait_until
from tether.tools.mqtt import MqttToolRunner, ToolWorker
from tether.tools.registry import ToolRegistry

CALLS = 8


async def _split(url: str, registry: ToolRegistry) -> tuple[ToolWorker, ToolWorker, list[int]]:
    async with (
        ToolWorker(url, registry, worker_id="w-a") as a,
        ToolWorker(url, registry, worker_id="w-b") as b,
        MqttToolRunner(url, timeout=20) as runner,
    ):
        await wait_until(lambda: _serving(runner) == {"w-a", "w-b"}, what="both workers online")
        calls = [runner.call("slow", {"seconds": 0.2}, call_id=f"s{i}") for i in range(CALLS)]
        pids = await asyncio.gather(*calls)
        assert runner.stats.results == CALLS and runner.stats.republished == 0
    return a, b, pids


def _serving(runner: MqttToolRunner) -> set[str]:
    return {w.worker_id for w in runner.roster.serving("slow")}


@pytest.mark.slow  # a mosquitto process
async def test_two_workers_split_the_load_with_a_shared_subscription(
    mosquitto, registry: ToolRegistry
) -> None:
    a, b, _ = await _split(mosquitto.url, registry)
    assert a.shared and b.shared
    assert a.stats.ran > 0 and b.stats.ran > 0
    assert a.stats.ran + b.stats.ran == CALLS


async def test_two_workers_split_the_load_by_client_choice_on_amqtt(embedded, registry: ToolRegistry) -> None:
    a, b, _ = await _split(embedded.url, registry)
    assert not a.shared and not b.shared
    assert a.stats.ran == b.stats.ran == CALLS // 2  # fewest in flight first: an even split
