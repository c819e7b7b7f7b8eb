"""Tool calls through real brokers: results, typed errors, timeouts, TCP_NODELAY, idempotency by call id."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from tests.mqtt.conftest import wait_until
from tests.mqtt.remote_tools import Point
from tether.tools.errors import ToolArgumentError, ToolExecutionError, ToolTimeoutError
from tether.tools.local import LocalToolRunner
from tether.tools.mqtt import (
    MqttCallTimeoutError,
    MqttToolRunner,
    RemoteToolArgumentError,
    RemoteToolError,
    RemoteToolExecutionError,
    ToolWorker,
)
from tether.tools.mqtt.envelope import ResultEnvelope, encode
from tether.tools.registry import ToolRegistry
from tether.tools.runner import DEFAULT_TOOL_TIMEOUT_S, ToolRunner


async def test_round_trip(broker_url: str, registry: ToolRegistry) -> None:
    async with ToolWorker(broker_url, registry) as worker, MqttToolRunner(broker_url, timeout=10) as runner:
        assert isinstance(runner, ToolRunner)
        assert await runner.call("add", {"a": 2, "b": 3}, call_id="c1") == 5
        assert await runner.call("point", {"x": 4}, call_id="c2") == {"x": 4, "y": 4}
        assert worker.stats.ran == 2
        assert runner.stats.results == 2 and runner.stats.republished == 0


async def test_typed_result_with_registry(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry), MqttToolRunner(embedded.url, registry=registry) as runner:
        assert await runner.call("point", {"x": 7}, call_id="p") == Point(x=7, y=7)


async def test_remote_error_names_the_tool(broker_url: str, registry: ToolRegistry) -> None:
    async with ToolWorker(broker_url, registry, worker_id="w-err"), MqttToolRunner(broker_url) as runner:
        with pytest.raises(ToolExecutionError) as info:
            await runner.call("divide", {"a": 1.0, "b": 0.0}, call_id="d1")
        exc = info.value
        assert isinstance(exc, RemoteToolExecutionError) and isinstance(exc, RemoteToolError)
        assert exc.tool == "divide" and exc.call_id == "d1" and exc.worker == "w-err"
        assert exc.cause_type == "ZeroDivisionError"
        assert str(exc) == (
            "tool 'divide' failed: ZeroDivisionError: float division by zero [remote on worker w-err, call d1]"
        )


async def test_remote_argument_error_names_the_field(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry), MqttToolRunner(embedded.url) as runner:
        with pytest.raises(ToolArgumentError) as info:
            await runner.call("add", {"a": "2", "b": 3}, call_id="a1")
        assert isinstance(info.value, RemoteToolArgumentError)
        assert info.value.tool == "add" and info.value.field == "a"


async def test_timeout(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry, worker_id="w-slow"), MqttToolRunner(embedded.url) as runner:
        with pytest.raises(ToolTimeoutError) as info:
            await runner.call("slow", {"seconds": 5.0}, call_id="s1", timeout=0.3)
        exc = info.value
        assert isinstance(exc, MqttCallTimeoutError)
        assert exc.tool == "slow" and exc.call_id == "s1" and exc.worker == "w-slow" and exc.attempts == 1
        assert str(exc) == (
            "tool 'slow' timed out after 0.3 s (call s1): no result from worker w-slow (attempt 1) (1 attempt(s))"
        )


async def test_timeout_without_any_worker(embedded) -> None:
    async with MqttToolRunner(embedded.url) as runner:
        with pytest.raises(MqttCallTimeoutError, match="no worker serving tool 'add' came online"):
            await runner.call("add", {"a": 1, "b": 2}, call_id="n1", timeout=0.2)


async def test_tcp_nodelay_is_set(broker_url: str, registry: ToolRegistry) -> None:
    async with ToolWorker(broker_url, registry) as worker, MqttToolRunner(broker_url) as runner:
        assert runner.tcp_nodelay is True
        assert worker.tcp_nodelay is True


async def test_worker_answers_a_completed_call_id_from_its_cache(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry) as worker, MqttToolRunner(embedded.url) as runner:
        assert await runner.call("count", {"key": "k"}, call_id="same") == 1
        assert await runner.call("count", {"key": "k"}, call_id="same") == 1  # not run again
        assert await runner.call("count", {"key": "k"}, call_id="other") == 2
        assert worker.stats.ran == 2 and worker.stats.cache_hits == 1


async def test_concurrent_calls_with_one_call_id_run_once(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry) as worker, MqttToolRunner(embedded.url) as runner:
        results = await asyncio.gather(*(runner.call("count", {"key": "j"}, call_id="j1") for _ in range(3)))
        assert results == [1, 1, 1]
        assert worker.stats.ran == 1 and runner.stats.calls == 1


async def test_duplicate_result_is_not_delivered_twice(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry), MqttToolRunner(embedded.url) as runner:
        assert await runner.call("add", {"a": 1, "b": 1}, call_id="dup") == 2
        forged = ResultEnvelope(call_id="dup", ok=True, result=99, worker="elsewhere")
        async with aiomqtt.Client(embedded.address.host, embedded.address.port) as other:
            await other.publish(runner.reply_topic, encode(forged), qos=1)
        await wait_until(lambda: runner.stats.duplicates_ignored == 1, what="the forged duplicate")
        assert runner.stats.results == 1


async def test_worker_status_is_retained_and_cleared(embedded, registry: ToolRegistry) -> None:
    async with ToolWorker(embedded.url, registry, worker_id="w-status"):
        async with MqttToolRunner(embedded.url) as runner:
            await asyncio.wait_for(runner.roster.wait_route("add", {}), 5)
            (status,) = runner.roster.workers()
            assert status.worker_id == "w-status" and status.shared is False
            assert "slow" in status.tools and "add" in status.tools
    async with aiomqtt.Client(embedded.address.host, embedded.address.port) as probe:
        await probe.subscribe("tether/workers/+/status", qos=1)

        async def first_message() -> aiomqtt.Message:
            async for message in probe.messages:
                return message
            raise AssertionError("unreachable")

        with pytest.raises(asyncio.TimeoutError):
            stale = await asyncio.wait_for(first_message(), 0.3)
            pytest.fail(f"stale retained status {json.loads(stale.payload)}")


async def test_local_and_remote_runners_share_the_default_timeout(embedded, registry: ToolRegistry) -> None:
    local, remote = LocalToolRunner(registry), MqttToolRunner(embedded.url)
    assert local.timeout == remote.timeout == DEFAULT_TOOL_TIMEOUT_S
    short = LocalToolRunner(registry, timeout=0.05)
    with pytest.raises(ToolTimeoutError) as info:
        await short.call("slow", {"seconds": 5.0}, call_id="t1")  # timeout=None: the runner's
    assert info.value.timeout == 0.05 and info.value.call_id == "t1"
