"""``MqttToolRunner``: the ``ToolRunner`` that calls tools on remote workers over MQTT.

One call, as the runner sees it::

    route (roster: shared topic, or a chosen worker) -> publish CallEnvelope (QoS 1, attempt n)
        -> [ack from worker W] -> result: the first result wins, later ones are counted and dropped
    attempt lost -> route and publish again (attempt n+1, same call_id). An attempt is lost when
        W goes offline before its result, or a worker serving the tool goes offline while no one has
        acked the call, or neither ack nor result comes within ack_timeout

Results are correlated by ``call_id`` on this client's own reply topic. The program sees one outcome per
call: the first result to arrive; a duplicate (a re-published call whose first worker also answered) is
counted and dropped. A worker that already completed a ``call_id`` re-sends its cached result instead of
running the tool again; a re-published call that lands on another worker may run twice there (at-least-once
execution, exactly-once delivery into the program). Use a new ``call_id`` for each retry of a failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiomqtt

from tether.tools.mqtt import topics
from tether.tools.mqtt.connection import (
    DEFAULT_BACKOFF,
    Backoff,
    BrokerAddress,
    close_client,
    open_client,
    read_messages,
    tcp_nodelay,
)
from tether.tools.mqtt.envelope import (
    AckEnvelope,
    CallEnvelope,
    ResultEnvelope,
    decode_reply,
    decode_status,
    encode,
)
from tether.tools.mqtt.errors import (
    BrokerConnectionError,
    MqttCallTimeoutError,
    MqttProtocolError,
    remote_error,
)
from tether.tools.mqtt.pending import InFlight, PendingCall
from tether.tools.mqtt.roster import Route, WorkerRoster
from tether.tools.runner import DEFAULT_TOOL_TIMEOUT_S

if TYPE_CHECKING:
    from tether.tools.durations import ToolDurationStats
    from tether.tools.registry import ToolRegistry

WORKERS_REMEMBERED = 10_000  # worker_of() answers for this many recent calls


@dataclass(frozen=True)
class ClientStats:
    """Counters since the runner was made: calls made, results delivered, duplicates dropped, re-publications
    (after a worker died or did not ack), acks received, reconnections after a lost connection."""

    calls: int = 0
    results: int = 0
    duplicates_ignored: int = 0
    republished: int = 0
    acks: int = 0
    reconnects: int = 0


class MqttToolRunner:
    """Calls tools served by ``tether worker`` processes through the broker at ``broker`` (``mqtt://h:p``).

    ``timeout`` is the default per-call limit in seconds (``call(timeout=...)`` overrides it; the default,
    ``tether.tools.runner.DEFAULT_TOOL_TIMEOUT_S``, is the local runner's too); ``ack_timeout``
    how long an attempt may go unacknowledged before it is published again. With ``registry``, results of the
    tools it knows are turned back into their typed values (``Tool.load_result``); otherwise a call returns
    the JSON value the worker sent. Connects on first use or in ``async with``; ``close()`` disconnects and
    fails calls still in flight. With ``tool_stats``, each successful call's duration (as this client sees it,
    the broker's round trip included) is recorded there: the runner is what times the tools it runs.

    A lost connection (a broker restart) fails the calls in flight at once with ``BrokerConnectionError``;
    the runner then reconnects in the background with ``backoff`` (and a call made meanwhile tries to connect
    itself), subscribes again and rebuilds its roster from the workers' statuses.
    """

    def __init__(
        self,
        broker: str,
        *,
        timeout: float = DEFAULT_TOOL_TIMEOUT_S,
        ack_timeout: float = 5.0,
        registry: ToolRegistry | None = None,
        client_id: str | None = None,
        keepalive: int = 10,
        backoff: Backoff = DEFAULT_BACKOFF,
        tool_stats: ToolDurationStats | None = None,
    ):
        self.address = BrokerAddress.parse(broker)
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self.registry = registry
        self.client_id = client_id or f"tether-client-{uuid.uuid4().hex[:12]}"
        self.reply_topic = topics.client_reply(self.client_id)
        self.keepalive = keepalive
        self.backoff = backoff
        self.tool_stats = tool_stats  # each successful call's seconds, round trip included, go here
        self.roster = WorkerRoster()
        self._inflight = InFlight()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._broken: BaseException | None = None
        self._closed = False
        self._connections = 0
        self._counts = {name: 0 for name in ClientStats.__dataclass_fields__}
        self._workers: OrderedDict[str, str | None] = OrderedDict()  # call_id -> the worker of its last attempt
        self.roster.on_offline(self._inflight.worker_lost)

    @property
    def stats(self) -> ClientStats:
        return ClientStats(**self._counts)

    @property
    def tcp_nodelay(self) -> bool:
        """Whether TCP_NODELAY is set on this runner's socket (read back from the socket)."""
        return self._client is not None and tcp_nodelay(self._client)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._broken is None

    async def connect(self) -> None:
        if self.connected:
            return
        async with self._connect_lock:
            if self.connected:
                return
            if self._client is not None:  # the connection was lost: start over
                await close_client(self._client)
                self._client = None
            self._broken = None
            client, _ = await open_client(self.address, identifier=self.client_id, keepalive=self.keepalive)
            if self._connections:
                self._counts["reconnects"] += 1
            self._connections += 1
            self.roster.clear()  # the statuses come again (retained) with the new subscription
            try:
                await client.subscribe([(self.reply_topic, 1), (topics.STATUS_WILDCARD, 1)])
            except aiomqtt.MqttError as exc:
                await close_client(client)
                raise BrokerConnectionError(str(self.address), f"cannot subscribe: {exc}") from exc
            self._client = client
            self._reader = asyncio.create_task(self._read(client), name=f"mqtt-reader-{self.client_id}")

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if client is not None:
            await close_client(client)
        self._fail_all("the runner was closed")

    async def __aenter__(self) -> MqttToolRunner:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def call(
        self, tool: str, args: Mapping[str, Any], *, call_id: str, timeout: float | None = None
    ) -> Any:
        """Run ``tool`` on a worker and return its result (typed when ``registry`` knows the tool).

        Raises ``MqttCallTimeoutError`` (a ``ToolTimeoutError``) after ``timeout`` seconds (default: the
        runner's), ``RemoteToolError`` subclasses for errors the worker reported (``ToolExecutionError``,
        ``ToolArgumentError``, ... counterparts), ``BrokerConnectionError`` when the broker is unreachable.
        A second call with a ``call_id`` still in flight joins the first instead of publishing again.
        """
        topics.check_level(tool, "tool name")
        await self.connect()
        joined = self._inflight.get(call_id)
        if joined is not None:
            if joined.tool != tool:
                raise MqttProtocolError(f"call {call_id} is in flight for tool {joined.tool!r}", tool=tool)
            return await asyncio.shield(joined.outcome)
        loop = asyncio.get_running_loop()
        call = PendingCall(call_id, tool, dict(args), loop.create_future(), loop.create_future())
        worker: str | None = None  # the worker whose result came back
        self._inflight.add(call)
        self._counts["calls"] += 1
        limit = self.timeout if timeout is None else timeout
        start = time.perf_counter()
        try:
            envelope = await _within(limit, self._drive(call, time.time() + limit))
            worker = envelope.worker
            call.outcome.set_result(self._unwrap(call, envelope))
            if self.tool_stats is not None:
                self.tool_stats.observe(tool, time.perf_counter() - start)
        except asyncio.TimeoutError:
            reason = call.waiting_for if self._broken is None else f"connection lost: {self._broken}"
            exc = MqttCallTimeoutError(
                tool, limit, call_id, attempts=call.attempt, reason=reason, worker=call.worker
            )
            call.outcome.set_exception(exc)
        except asyncio.CancelledError:
            call.outcome.cancel()  # joined callers see the cancellation too
            raise
        except Exception as exc:
            call.outcome.set_exception(exc)
        finally:
            self._inflight.remove(call)
            self._workers[call_id] = worker or call.worker
            while len(self._workers) > WORKERS_REMEMBERED:
                self._workers.popitem(last=False)
            if call.result.done() and not call.result.cancelled():
                call.result.exception()  # retrieved: a connection failure is reported through ``outcome``
        return call.outcome.result()

    def worker_of(self, call_id: str) -> str | None:
        """The worker that ran ``call_id``'s last attempt (``None``: none took it), for the trace; forgotten
        once read, and after ``WORKERS_REMEMBERED`` later calls."""
        return self._workers.pop(call_id, None)

    async def _drive(self, call: PendingCall, deadline: float) -> ResultEnvelope:
        while True:
            call.waiting_for = f"no worker serving tool {call.tool!r} came online"
            route = self.roster.choose(call.tool, self._inflight.load) or await self._wait_route(call)
            self._inflight.new_attempt(call, route.worker)
            envelope = CallEnvelope(
                call_id=call.call_id,
                tool=call.tool,
                args=call.args,
                reply_to=self.reply_topic,
                deadline=deadline,
                attempt=call.attempt,
            )
            call.waiting_for = f"no ack for attempt {call.attempt} on {route.topic}"
            await self._publish(route.topic, encode(envelope), call)
            if await self._attempt_answered(call):
                return call.result.result()
            self._counts["republished"] += 1

    async def _wait_route(self, call: PendingCall) -> Route:
        """Wait for a worker serving the call's tool, unless the connection fails first."""
        waiting = asyncio.ensure_future(self.roster.wait_route(call.tool, self._inflight.load))
        try:
            await asyncio.wait({waiting, call.result}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if call.result.done():
            call.result.result()  # raises the connection failure
        return waiting.result()

    async def _attempt_answered(self, call: PendingCall) -> bool:
        """Wait out one attempt: True once a result is in, False when the attempt is lost or never acked."""
        assert call.acked is not None and call.lost is not None
        await asyncio.wait(
            {call.result, call.acked, call.lost},
            timeout=self.ack_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if call.result.done():
            return True
        if call.lost.done() or not call.acked.done():
            return False
        call.waiting_for = f"no result from worker {call.worker} (attempt {call.attempt})"
        await asyncio.wait({call.result, call.lost}, return_when=asyncio.FIRST_COMPLETED)
        return call.result.done()

    async def _publish(self, topic: str, payload: bytes, call: PendingCall) -> None:
        if self._client is None or self._broken is not None:
            raise BrokerConnectionError(
                str(self.address), "not connected", tool=call.tool, call_id=call.call_id
            )
        try:
            await self._client.publish(topic, payload, qos=1)
        except aiomqtt.MqttError as exc:
            raise BrokerConnectionError(
                str(self.address), f"publish failed: {exc}", tool=call.tool, call_id=call.call_id
            ) from exc

    def _unwrap(self, call: PendingCall, envelope: ResultEnvelope) -> Any:
        if not envelope.ok:
            assert envelope.error is not None
            raise remote_error(envelope.error, call.call_id, envelope.worker)
        if self.registry is not None and call.tool in self.registry:
            return self.registry.get(call.tool).load_result(envelope.result)
        return envelope.result

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in read_messages(client):
                self._dispatch(str(message.topic), message.payload)
        except aiomqtt.MqttError as exc:
            self._broken = exc
            self._fail_all(f"connection lost: {exc}")
            await self._reconnect()

    async def _reconnect(self) -> None:
        """Connect again with backoff until it works or the runner is closed (``connect`` starts a new reader
        and ends this one)."""
        for delay in self.backoff.delays():
            await asyncio.sleep(delay)
            if self._closed or self.connected:
                return  # closed, or a call has reconnected already
            with contextlib.suppress(BrokerConnectionError):
                await self.connect()
                return

    def _dispatch(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        try:
            if topic == self.reply_topic:
                self._on_reply(decode_reply(data))
            elif (worker_id := topics.status_worker_id(topic)) is not None:
                self.roster.update(worker_id, decode_status(data))
        except MqttProtocolError:
            return  # a malformed message from someone else is not this client's failure

    def _on_reply(self, reply: AckEnvelope | ResultEnvelope) -> None:
        call = self._inflight.get(reply.call_id)
        if isinstance(reply, AckEnvelope):
            self._counts["acks"] += 1
            if call is not None and reply.attempt == call.attempt and call.acked and not call.acked.done():
                self._inflight.assign(call, reply.worker)
                call.acked.set_result(None)
                if not self.roster.online(reply.worker) and call.lost and not call.lost.done():
                    call.lost.set_result(f"worker {reply.worker} is offline")
            return
        if call is None or call.result.done():
            self._counts["duplicates_ignored"] += 1
            return
        self._counts["results"] += 1
        call.result.set_result(reply)

    def _fail_all(self, reason: str) -> None:
        for call in list(self._inflight.calls.values()):
            if not call.result.done():
                exc = BrokerConnectionError(str(self.address), reason, tool=call.tool, call_id=call.call_id)
                call.result.set_exception(exc)


async def _within(limit: float, run: Coroutine[Any, Any, ResultEnvelope]) -> ResultEnvelope:
    """``await run`` cut off after ``limit`` seconds (``TimeoutError``); in this task where Python has
    ``asyncio.timeout`` (3.11), so a call starts without waiting a loop step for a task of its own."""
    if sys.version_info < (3, 11):
        return await asyncio.wait_for(run, limit)
    async with asyncio.timeout(limit):
        return await run
