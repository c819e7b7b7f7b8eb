"""A broker restart on the same port: the worker (a ``tether worker`` subprocess) and the runner reconnect
on their own, the roster sees the worker again, and tool calls succeed again within a bounded time."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.mqtt.conftest import wait_until
from tether.tools.mqtt import BrokerConnectionError, MqttToolRunner, ToolWorker
from tether.tools.mqtt.mosquitto import MosquittoBroker
from tether.tools.registry import ToolRegistry

pytestmark = pytest.mark.slow  # mosquitto restarted under a `tether worker` subprocess

Spawn = Callable[..., subprocess.Popen[bytes]]
BACK_WITHIN_S = 10.0


@pytest.mark.parametrize("how", ["kill", "terminate"])
async def test_worker_and_runner_come_back_after_a_broker_restart(
    mosquitto: MosquittoBroker, spawn_worker: Spawn, how: str
) -> None:
    worker = spawn_worker(mosquitto.url, "w-back")
    async with MqttToolRunner(mosquitto.url, timeout=10) as runner:
        await wait_until(lambda: runner.roster.online("w-back"), what="the worker online")
        assert await runner.call("add", {"a": 1, "b": 2}, call_id="before") == 3
        running = asyncio.ensure_future(runner.call("slow", {"seconds": 5.0}, call_id="cut"))
        await asyncio.sleep(0.2)

        await mosquitto.stop(kill=how == "kill")
        with pytest.raises(BrokerConnectionError, match="connection lost"):
            await asyncio.wait_for(running, 5)
        await asyncio.sleep(0.5)  # both sides are retrying against a closed port now
        restarted = time.monotonic()
        await mosquitto.start()

        await wait_until(lambda: runner.roster.online("w-back"), BACK_WITHIN_S, "the worker online again")
        assert await runner.call("add", {"a": 2, "b": 3}, call_id="after") == 5
        assert time.monotonic() - restarted < BACK_WITHIN_S
        assert runner.stats.reconnects == 1 and runner.connected and runner.tcp_nodelay
        assert worker.poll() is None  # the worker did not exit


async def test_in_process_worker_counts_its_reconnection(
    mosquitto: MosquittoBroker, registry: ToolRegistry
) -> None:
    async with ToolWorker(mosquitto.url, registry, worker_id="w-in") as worker:
        await mosquitto.stop(kill=True)
        await wait_until(lambda: not worker.connected, what="the worker to see the broker go")
        await mosquitto.start()
        await wait_until(lambda: worker.connected, BACK_WITHIN_S, "the worker to reconnect")
        assert worker.stats.reconnects == 1 and worker.tcp_nodelay
        async with MqttToolRunner(mosquitto.url) as runner:
            assert await runner.call("count", {"key": "r"}, call_id="r1", timeout=5) == 1


async def test_worker_without_reconnect_ends_when_the_broker_goes(
    mosquitto: MosquittoBroker, registry: ToolRegistry
) -> None:
    worker = ToolWorker(mosquitto.url, registry, reconnect=False)
    await worker.start()
    await mosquitto.stop(kill=True)
    with pytest.raises(BrokerConnectionError, match="lost its connection"):
        await asyncio.wait_for(worker.wait(), 5)
    await worker.stop()


async def test_worker_stops_while_the_broker_is_down(mosquitto: MosquittoBroker, registry: ToolRegistry) -> None:
    worker = ToolWorker(mosquitto.url, registry)
    await worker.start()
    await mosquitto.stop(kill=True)
    await wait_until(lambda: not worker.connected, what="the worker to see the broker go")
    await asyncio.wait_for(worker.stop(), 2)
    await asyncio.wait_for(worker.wait(), 1)  # stopped, not lost: no error
    assert worker.stats.reconnects == 0
