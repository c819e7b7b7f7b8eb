"""Broker addresses and MQTT connections with the options every Tether client needs.

Every connection sets TCP_NODELAY on its socket (without it, Nagle's algorithm and delayed ACKs turn a QoS 1
round trip from about a millisecond into tens of milliseconds). The protocol is MQTT 5 where the broker
speaks it (mosquitto: shared subscriptions, reason codes) and MQTT 3.1.1 otherwise (amqtt 0.12 refuses MQTT 5
with "unsupported protocol version"), found anew on every connection.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt import ProtocolVersion
from aiomqtt.exceptions import MqttConnectError

from tether.tools.mqtt.errors import BrokerConnectionError

DEFAULT_PORT = 1883
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_UNSUPPORTED_PROTOCOL = {1, 132}  # MQTT 3.1.1 CONNACK code / MQTT 5 reason code


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker listens; parsed from ``mqtt://host:port`` (``tcp://`` and bare ``host:port`` too)."""

    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        text = url if "://" in url else f"mqtt://{url}"
        parts = urlsplit(text)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise BrokerConnectionError(url, "expected a broker address like mqtt://127.0.0.1:1883")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise BrokerConnectionError(url, f"bad port: {exc}") from exc
        return cls(parts.hostname, port)

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


async def open_client(
    address: BrokerAddress,
    *,
    identifier: str,
    keepalive: int = 10,
    will: aiomqtt.Will | None = None,
    protocol: ProtocolVersion | None = None,
    connect_timeout: float = 10.0,
) -> tuple[aiomqtt.Client, ProtocolVersion]:
    """A connected client (already entered; leave it with ``close_client``) and the protocol it speaks.

    ``protocol=None`` tries MQTT 5 first and falls back to MQTT 3.1.1 when the broker refuses it.
    Raises ``BrokerConnectionError`` when the broker cannot be reached or refuses the connection.
    """
    if protocol is None and will is not None:
        # amqtt misreads an MQTT 5 CONNECT that carries a will and never answers it: ask without one first.
        client, protocol = await open_client(
            address, identifier=f"{identifier}-probe", connect_timeout=connect_timeout
        )
        await close_client(client)
    versions = [protocol] if protocol else [ProtocolVersion.V5, ProtocolVersion.V311]
    for i, version in enumerate(versions):
        client = aiomqtt.Client(
            address.host,
            address.port,
            identifier=identifier,
            protocol=version,
            will=will,
            keepalive=keepalive,
            timeout=connect_timeout,
            socket_options=[NODELAY],
        )
        _write_promptly(client)
        try:
            await client.__aenter__()
        except MqttConnectError as exc:
            code = getattr(exc.rc, "value", exc.rc)
            if code in _UNSUPPORTED_PROTOCOL and i + 1 < len(versions):
                continue
            raise BrokerConnectionError(str(address), f"connection refused: {exc}") from exc
        except aiomqtt.MqttError as exc:
            raise BrokerConnectionError(str(address), f"cannot connect: {exc}") from exc
        return client, version
    raise AssertionError("unreachable")


async def close_client(client: aiomqtt.Client) -> None:
    """Disconnect cleanly when still connected; a connection already lost is left as it is."""
    try:
        await client.__aexit__(None, None, None)
    except aiomqtt.MqttError:
        pass


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``initial`` seconds, doubling up to ``maximum``, each scaled by a
    random factor in [0.5, 1] so that clients dropped together do not come back in lockstep."""

    initial: float = 0.05
    maximum: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * random.uniform(0.5, 1.0)
            delay = min(delay * 2, self.maximum)


DEFAULT_BACKOFF = Backoff()


def _write_promptly(client: aiomqtt.Client) -> None:
    """Send each queued packet in the next event-loop step instead of three steps later.

    paho tells aiomqtt it has a packet to send through ``on_socket_register_write``; aiomqtt answers with
    ``call_soon_threadsafe(add_writer)`` (it may be called from its connect thread): a self-pipe write, a
    wakeup, a step to register the writer, and a poll for writability before the packet leaves. On the loop
    thread this hook writes in the next step (``call_soon``: outside paho's callbacks) and leaves only a
    socket that cannot take the whole packet, or an error, to aiomqtt's writer, which handles both.
    """
    paho = client._client  # aiomqtt keeps the paho client private; its callbacks are paho's public API
    loop = asyncio.get_running_loop()
    fallback = paho.on_socket_register_write

    def write_now(mqttc: Any, userdata: Any, sock: Any) -> None:
        try:
            mqttc.loop_write()
        except Exception:  # aiomqtt's writer tries again and reports the broken connection
            fallback(mqttc, userdata, sock)
            return
        if mqttc.want_write():
            fallback(mqttc, userdata, sock)

    def register_write(mqttc: Any, userdata: Any, sock: Any) -> None:
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            loop.call_soon(write_now, mqttc, userdata, sock)
        else:
            fallback(mqttc, userdata, sock)

    paho.on_socket_register_write = register_write


_LOST: Any = object()


async def read_messages(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Message]:
    """The messages of a connected client, like ``client.messages``; raises ``aiomqtt.MqttError`` once the
    connection is lost.

    ``client.messages`` starts a task and an ``asyncio.wait`` for every message (to watch the connection
    too); here the connection's end puts a marker in the queue instead, and each message costs one
    ``queue.get()``.
    """
    queue: asyncio.Queue[Any] = client._queue  # aiomqtt's own message queue and disconnect future
    disconnected: asyncio.Future[None] = client._disconnected
    disconnected.add_done_callback(lambda _: queue.put_nowait(_LOST))
    while True:
        message = await queue.get()
        if message is _LOST:
            cause = None if disconnected.cancelled() else disconnected.exception()
            raise aiomqtt.MqttError("Disconnected during message iteration") from cause
        yield message


def tcp_nodelay(client: aiomqtt.Client) -> bool:
    """Whether TCP_NODELAY is set on the client's socket right now (read back from the socket)."""
    sock = client._client.socket()  # aiomqtt keeps the paho client private; the socket is paho's public API
    if not isinstance(sock, socket.socket):
        return False
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
