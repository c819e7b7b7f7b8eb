"""Attempts that go unanswered are published again; workers stop gracefully; a lost broker fails calls."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from tether.tools.mqtt import BrokerConnectionError, MqttToolRunner, ToolWorker
from tether.tools.mqtt.broker import EmbeddedBroker
from tether.tools.mqtt.envelope import WorkerStatus, encode
from tether.tools.mqtt.topics import worker_status
from tether.tools.registry import ToolRegistry


async def test_unacked_attempt_is_published_to_another_worker(embedded, registry: ToolRegistry) -> None:
    host, port = embedded.address.host, embedded.address.port
    async with aiomqtt.Client(host, port) as hung:  # announces itself online, never takes a call
        status = WorkerStatus(worker_id="w-hung", tools=("slow",))
        await hung.publish(worker_status("w-hung"), encode(status), qos=1, retain=True)
        async with (
            ToolWorker(embedded.url, registry, worker_id="w-real") as real,
            MqttToolRunner(embedded.url, ack_timeout=0.3) as runner,
        ):
            await asyncio.wait_for(_until_serving(runner, {"w-hung", "w-real"}), 5)
            assert await runner.call("slow", {"seconds": 0.1}, call_id="h1", timeout=5) > 0
            assert runner.stats.republished == 1 and real.stats.ran == 1


async def _until_serving(runner: MqttToolRunner, ids: set[str]) -> None:
    while {w.worker_id for w in runner.roster.serving("slow")} != ids:
        await asyncio.sleep(0.01)


async def test_stopping_worker_finishes_its_running_call(embedded, registry: ToolRegistry) -> None:
    worker = ToolWorker(embedded.url, registry, worker_id="w-stop")
    await worker.start()
    async with MqttToolRunner(embedded.url) as runner:
        call = asyncio.ensure_future(runner.call("slow", {"seconds": 0.3}, call_id="g1", timeout=5))
        while worker.stats.ran == 0:
            await asyncio.sleep(0.01)
        await worker.stop()
        assert await call > 0
        assert runner.stats.republished == 0
        assert not runner.roster.online("w-stop")


async def test_lost_broker_fails_the_call_at_once(registry: ToolRegistry) -> None:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        async with ToolWorker(broker.url, registry) as worker, MqttToolRunner(broker.url) as runner:
            call = asyncio.ensure_future(runner.call("slow", {"seconds": 5.0}, call_id="b1", timeout=30))
            unserved = asyncio.ensure_future(runner.call("nobody_serves_this", {}, call_id="b2", timeout=30))
            while worker.stats.ran == 0:
                await asyncio.sleep(0.01)
            url = broker.url
            await broker.stop()
            for task, tool, call_id in ((call, "slow", "b1"), (unserved, "nobody_serves_this", "b2")):
                with pytest.raises(BrokerConnectionError) as info:
                    await asyncio.wait_for(task, 5)
                assert str(info.value).startswith(
                    f"MQTT broker {url} while calling tool {tool!r} (call {call_id}): connection lost: "
                )
    finally:
        await broker.stop()
