"""``ToolWorker``: serves a ``ToolRegistry``'s tools to ``MqttToolRunner`` clients over MQTT.

Lifecycle::

    connect (last will: retained offline status)
    subscribe tether/workers/<id>/call, and $share/<group>/tether/tools/<tool>/call for each tool
        (when the broker has shared subscriptions: MQTT 5 and a granted SUBACK; never on amqtt)
    publish retained WorkerStatus (online, tools, shared)
    per call: validate_args -> invoke -> dump_result -> result (QoS 1), cached by call_id; an ack (QoS 1)
        goes first once the call has run ``ack_after`` seconds (fast calls need none)
    connection lost (a broker restart): reconnect with backoff, subscribe and publish the status again
    stop: status with no tools (no new calls), finish running calls within ``grace``, clear the retained
        status (empty payload = offline), disconnect

A call whose ``(reply_to, call_id)`` was already completed gets the cached result again without running the
tool; one still running gets a fresh ack (the client now watches this worker for it). A call past its
deadline is dropped unrun; a running one is cut off at its deadline (async tools; a sync tool's thread runs
on) with a ``ToolTimeoutError`` result.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiomqtt
import pydantic_core
from aiomqtt import ProtocolVersion

from tether.tools.errors import ToolError, ToolExecutionError, ToolTimeoutError
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
    ErrorInfo,
    ResultEnvelope,
    WorkerStatus,
    decode_call,
    encode,
)
from tether.tools.mqtt.errors import BrokerConnectionError, MqttProtocolError, error_details

if TYPE_CHECKING:
    from tether.tools.registry import ToolRegistry
    from tether.tools.tool import Tool

_WIRE_TYPES = ("ToolArgumentError", "UnknownToolError", "ToolTimeoutError", "ToolExecutionError")


@dataclass(frozen=True)
class WorkerStats:
    """Counters since start: calls started, calls answered from the cache, duplicates of running calls,
    calls dropped past their deadline, malformed messages, reconnections after a lost connection."""

    ran: int = 0
    cache_hits: int = 0
    duplicates_running: int = 0
    expired: int = 0
    malformed: int = 0
    reconnects: int = 0


class ToolWorker:
    """Serves ``registry``'s tools through the broker at ``broker``; ``async with`` or ``start``/``stop``.

    ``shared``: ``None`` uses shared subscriptions where the broker grants them, ``True`` requires them,
    ``False`` takes direct calls only. ``concurrency`` bounds calls running at once (per-tool
    ``max_concurrency`` applies within it); ``keepalive`` (seconds) bounds how long a hung worker looks alive
    (the broker publishes its will after 1.5 keepalives); ``cache_size`` completed results are kept for
    duplicate calls; ``ack_after`` (seconds, ``None``: at once) is how long a call runs before it is acked.

    ``start`` raises ``BrokerConnectionError`` when the broker cannot be reached. A connection lost later (a
    broker restart) is re-established with ``backoff``, for as long as it takes, when ``reconnect`` (the
    default); the worker then subscribes and publishes its online status again. Calls running meanwhile go on,
    and their results go out on the new connection. With ``reconnect=False`` a lost connection ends the worker
    (``wait`` raises).
    """

    def __init__(
        self,
        broker: str,
        registry: ToolRegistry,
        *,
        worker_id: str | None = None,
        group: str = topics.DEFAULT_GROUP,
        shared: bool | None = None,
        concurrency: int = 64,
        keepalive: int = 5,
        cache_size: int = 4096,
        grace: float = 10.0,
        ack_after: float | None = 0.02,
        reconnect: bool = True,
        backoff: Backoff = DEFAULT_BACKOFF,
    ):
        self.address = BrokerAddress.parse(broker)
        self.registry = registry
        self.worker_id = topics.check_level(
            worker_id or f"tether-worker-{uuid.uuid4().hex[:12]}", "worker id"
        )
        self.group = topics.check_level(group, "group")
        self.keepalive = keepalive
        self.cache_size = cache_size
        self.grace = grace
        self.ack_after = ack_after
        self.reconnect = reconnect
        self.backoff = backoff
        self.shared = False
        self._want_shared = shared
        self._slots = asyncio.Semaphore(concurrency)
        self._tool_slots: dict[str, asyncio.Semaphore] = {}
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._done: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._closed = asyncio.Event()
        self._lost: BaseException | None = None
        self._counts = {name: 0 for name in WorkerStats.__dataclass_fields__}

    @property
    def stats(self) -> WorkerStats:
        return WorkerStats(**self._counts)

    @property
    def tools(self) -> list[str]:
        return self.registry.names()

    @property
    def tcp_nodelay(self) -> bool:
        return self._client is not None and tcp_nodelay(self._client)

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        self._client = await self._connect()
        self._reader = asyncio.create_task(self._serve_calls(), name=f"mqtt-worker-{self.worker_id}")

    async def _connect(self) -> aiomqtt.Client:
        """Connect, subscribe (direct topic, shared tool topics where granted), publish the online status."""
        status_topic = topics.worker_status(self.worker_id)
        offline = WorkerStatus(worker_id=self.worker_id, state="offline", group=self.group)
        will = aiomqtt.Will(status_topic, encode(offline), qos=1, retain=True)  # amqtt needs a non-empty will
        client, protocol = await open_client(
            self.address, identifier=self.worker_id, keepalive=self.keepalive, will=will
        )
        try:
            await client.subscribe([(topics.worker_call(self.worker_id), 1)])
            want = protocol == ProtocolVersion.V5 if self._want_shared is None else self._want_shared
            if want and self.tools:
                subs = [(topics.shared_tool_call(self.group, t), 1) for t in self.tools]
                granted = await client.subscribe(subs)
                self.shared = all(getattr(rc, "value", rc) < 0x80 for rc in granted)
                if self._want_shared and not self.shared:
                    raise BrokerConnectionError(str(self.address), "shared subscriptions were refused")
            await self._publish_status(client, self.tools)
        except aiomqtt.MqttError as exc:
            await close_client(client)
            raise BrokerConnectionError(str(self.address), f"worker setup failed: {exc}") from exc
        except BaseException:
            await close_client(client)
            raise
        return client

    async def stop(self) -> None:
        """Stop taking calls, finish running ones within ``grace`` seconds, announce offline, disconnect."""
        if self._reader is None or self._stopping:
            return
        self._stopping = True
        if self._client is None:  # between connections: stop reconnecting
            await self._stop_reader()
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish_status(client, [])
                if self.shared:
                    await client.unsubscribe([topics.shared_tool_call(self.group, t) for t in self.tools])
        running = list(self._running.values())
        if running:
            grace = 0.0 if client is None else self.grace  # results could not be sent anyway
            _, late = await asyncio.wait(running, timeout=grace) if grace else (set(), set(running))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._background and client is not None:
            await asyncio.wait(list(self._background), timeout=self.grace)
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(topics.worker_status(self.worker_id), b"", qos=1, retain=True)
        await self._stop_reader()
        self._client = None
        if client is not None:
            await close_client(client)
        self._closed.set()

    async def _stop_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def wait(self) -> None:
        """Until ``stop`` or the connection is lost (then ``BrokerConnectionError``)."""
        await self._closed.wait()
        if self._lost is not None:
            raise BrokerConnectionError(str(self.address), f"worker {self.worker_id} lost its connection")

    async def __aenter__(self) -> ToolWorker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _publish_status(self, client: aiomqtt.Client, tools: list[str]) -> None:
        status = WorkerStatus(
            worker_id=self.worker_id,
            tools=tuple(tools),
            shared=self.shared,
            group=self.group,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        await client.publish(topics.worker_status(self.worker_id), encode(status), qos=1, retain=True)

    async def _serve_calls(self) -> None:
        """Read calls until the connection is lost; then reconnect (or, without ``reconnect``, end)."""
        while self._client is not None:
            client = self._client
            try:
                async for message in read_messages(client):
                    self._on_call(message.payload if isinstance(message.payload, bytes) else b"")
            except aiomqtt.MqttError as exc:
                if self._stopping:
                    return
                self._client = None
                await close_client(client)
                if not self.reconnect:
                    self._lost = exc
                    self._closed.set()
                    return
                self._client = await self._reconnect()
                self._counts["reconnects"] += 1

    async def _reconnect(self) -> aiomqtt.Client:
        for delay in self.backoff.delays():
            await asyncio.sleep(delay)
            try:
                return await self._connect()
            except BrokerConnectionError:
                continue
        raise AssertionError("unreachable")

    def _on_call(self, payload: bytes) -> None:
        try:
            call = decode_call(payload)
        except MqttProtocolError:
            self._counts["malformed"] += 1
            return
        if self._stopping:
            return  # not acked: the client publishes it again elsewhere
        key = (call.reply_to, call.call_id)
        cached = self._done.get(key)
        if cached is not None:
            self._counts["cache_hits"] += 1
            self._spawn(self._send(call.reply_to, cached))
        elif key in self._running:
            self._counts["duplicates_running"] += 1
            self._ack(call)
        elif call.deadline is not None and time.time() > call.deadline:
            self._counts["expired"] += 1
        else:
            self._counts["ran"] += 1
            self._running[key] = asyncio.create_task(self._serve(call, key))

    async def _serve(self, call: CallEnvelope, key: tuple[str, str]) -> None:
        if self.ack_after is None:
            self._ack(call)
            ack = None
        else:
            ack = asyncio.get_running_loop().call_later(self.ack_after, self._ack, call)
        try:
            payload = _encode_result(await self._execute(call), call.tool)
            self._done[key] = payload
            while len(self._done) > self.cache_size:
                self._done.popitem(last=False)
        finally:
            self._running.pop(key, None)
            if ack is not None:
                ack.cancel()
        await self._send(call.reply_to, payload)

    def _ack(self, call: CallEnvelope) -> None:
        ack = AckEnvelope(call_id=call.call_id, worker=self.worker_id, attempt=call.attempt)
        self._spawn(self._send(call.reply_to, encode(ack)))

    async def _execute(self, call: CallEnvelope) -> ResultEnvelope:
        remaining = None if call.deadline is None else max(call.deadline - time.time(), 0.0)
        try:
            tool = self.registry.get(call.tool)
            tool.validate_args(call.args)
            async with self._slots, self._tool_limit(tool):
                run = tool.invoke(call.args)
                value = await (run if remaining is None else asyncio.wait_for(run, remaining))
            result = tool.dump_result(value)
        except asyncio.TimeoutError:
            return self._failure(call, ToolTimeoutError(call.tool, remaining or 0.0, call.call_id))
        except ToolError as exc:
            return self._failure(call, exc)
        except Exception as exc:
            return self._failure(call, ToolExecutionError(call.tool, exc, call_id=call.call_id))
        return ResultEnvelope(call_id=call.call_id, ok=True, result=result, worker=self.worker_id)

    def _failure(self, call: CallEnvelope, exc: ToolError) -> ResultEnvelope:
        wire_type = next((c.__name__ for c in type(exc).__mro__ if c.__name__ in _WIRE_TYPES), None)
        details = error_details(exc)
        if wire_type != type(exc).__name__:
            details["class"] = type(exc).__name__
        info = ErrorInfo(
            type=wire_type or type(exc).__name__,
            message=str(exc),
            tool=exc.tool or call.tool,
            details=details,
        )
        return ResultEnvelope(call_id=call.call_id, ok=False, error=info, worker=self.worker_id)

    def _tool_limit(self, tool: Tool) -> asyncio.Semaphore | contextlib.AbstractAsyncContextManager[None]:
        if tool.max_concurrency is None:
            return contextlib.nullcontext()
        sem = self._tool_slots.get(tool.name)
        if sem is None:
            sem = self._tool_slots[tool.name] = asyncio.Semaphore(tool.max_concurrency)
        return sem

    async def _send(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):  # the connection is gone: the will speaks for us
            await client.publish(topic, payload, qos=1)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _encode_result(result: ResultEnvelope, tool: str) -> bytes:
    try:
        return encode(result)
    except pydantic_core.PydanticSerializationError as exc:
        info = ErrorInfo(
            type="ToolExecutionError",
            message=f"tool {tool!r} returned a value that is not JSON-serialisable: {exc}",
            tool=tool,
            details={"cause_type": "PydanticSerializationError", "cause": str(exc)},
        )
        return encode(ResultEnvelope(call_id=result.call_id, ok=False, error=info, worker=result.worker))
