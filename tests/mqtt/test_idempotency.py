"""The worker's completed-call cache, seen from the wire: a re-published attempt of a ``call_id`` it completed
gets the cached result (byte for byte) without running the tool; one it is still running gets a fresh ack.
(A call re-published after its worker died runs again on another worker: ``test_worker_kill.py``.)"""

from __future__ import annotations

import asyncio
import time

import aiomqtt

from tests.mqtt.conftest import wait_until
from tether.tools.mqtt import ToolWorker
from tether.tools.mqtt.envelope import AckEnvelope, CallEnvelope, decode_reply, encode
from tether.tools.mqtt.topics import worker_call
from tether.tools.registry import ToolRegistry

REPLY = "tether/clients/probe/reply"


async def _replies(client: aiomqtt.Client, n: int) -> list[bytes]:
    out: list[bytes] = []
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        out.append(message.payload)
        if len(out) == n:
            break
    return out


def _call(call_id: str, tool: str, args: dict, attempt: int) -> bytes:
    envelope = CallEnvelope(
        call_id=call_id, tool=tool, args=args, reply_to=REPLY, deadline=time.time() + 10, attempt=attempt
    )
    return encode(envelope)


async def test_republished_attempt_of_a_completed_call_gets_the_cached_result(
    broker_url: str, registry: ToolRegistry
) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with (
        ToolWorker(broker_url, registry, worker_id="w-cache") as worker,
        aiomqtt.Client(host, int(port)) as probe,
    ):
        await probe.subscribe(REPLY, qos=1)
        await probe.publish(worker_call("w-cache"), _call("k", "count", {"key": "c"}, 1), qos=1)
        (first,) = await asyncio.wait_for(_replies(probe, 1), 5)
        await probe.publish(worker_call("w-cache"), _call("k", "count", {"key": "c"}, 2), qos=1)
        (again,) = await asyncio.wait_for(_replies(probe, 1), 5)
        assert again == first and decode_reply(first).result == 1  # type: ignore[union-attr]
        assert (worker.stats.ran, worker.stats.cache_hits) == (1, 1)


async def test_duplicate_of_a_running_call_is_acked_not_run(embedded, registry: ToolRegistry) -> None:
    host, port = embedded.address.host, embedded.address.port
    async with (
        ToolWorker(embedded.url, registry, worker_id="w-run", ack_after=None) as worker,
        aiomqtt.Client(host, port) as probe,
    ):
        await probe.subscribe(REPLY, qos=1)
        await probe.publish(worker_call("w-run"), _call("s", "slow", {"seconds": 0.3}, 1), qos=1)
        await wait_until(lambda: worker.stats.ran == 1, what="the call to start")
        await probe.publish(worker_call("w-run"), _call("s", "slow", {"seconds": 0.3}, 2), qos=1)
        replies = [decode_reply(p) for p in await asyncio.wait_for(_replies(probe, 3), 5)]
        acks = sorted(r.attempt for r in replies if isinstance(r, AckEnvelope))
        results = [r for r in replies if not isinstance(r, AckEnvelope)]
        assert acks == [1, 2] and len(results) == 1 and results[0].ok
        assert (worker.stats.ran, worker.stats.duplicates_running) == (1, 1)
