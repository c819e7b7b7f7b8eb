"""``EmbeddedBroker``: an amqtt MQTT broker inside this process, for one-machine setups and tests.

amqtt 0.12 speaks MQTT 3.1.1 only and has no shared subscriptions: a ``$share/...`` filter is accepted but
never matches anything. Workers on it therefore take calls on their own direct topics only, and clients pick
the worker (see ``tether.tools.mqtt.roster``). Use mosquitto (``tether.tools.mqtt.mosquitto``) for shared subscriptions.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from tether.tools.mqtt.connection import BrokerAddress

_NOISE = ("Invalid protocol", "Invalid connection from")


class _DropProtocolProbe(logging.Filter):
    """Hides amqtt's warnings about our MQTT 5 connection attempts (clients then fall back to 3.1.1)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in str(record.msg) for text in _NOISE)


class EmbeddedBroker:
    """An amqtt broker bound to ``host:port`` (``port=0``: a free port, known once started).

    Use as ``async with EmbeddedBroker() as broker: ... broker.url ...``. Anonymous clients are allowed; no
    ``$SYS`` topics, no packet logging (both cost time per message).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self._port = port
        self._broker: Any = None

    @property
    def address(self) -> BrokerAddress:
        if self._broker is None:
            raise RuntimeError("the embedded broker is not started")
        return BrokerAddress(self.host, self._port)

    @property
    def url(self) -> str:
        return str(self.address)

    async def start(self) -> None:
        from amqtt.broker import Broker

        if self._broker is not None:
            raise RuntimeError("the embedded broker is already started")
        for name in ("amqtt.broker", "amqtt.mqtt.protocol.broker_handler"):
            logging.getLogger(name).addFilter(_DropProtocolProbe())
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self._port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        await broker.start()
        # amqtt exposes no API for the bound port; its listener is an asyncio.Server (pinned amqtt < 0.13).
        server = broker._servers["default"].instance
        self._port = server.sockets[0].getsockname()[1]
        self._broker = broker

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
