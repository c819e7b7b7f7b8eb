"""Remote tool workers over MQTT: ``MqttToolRunner`` (client), ``ToolWorker`` (server), brokers.

See ``docs/tools-mqtt.md`` for the topics, the envelope, liveness, retries and idempotency. ``EmbeddedBroker``
and ``MosquittoBroker`` are imported on first use (amqtt is only needed by the embedded broker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether._lazy import lazy_exports
from tether.tools.mqtt.client import ClientStats, MqttToolRunner
from tether.tools.mqtt.connection import BrokerAddress
from tether.tools.mqtt.envelope import AckEnvelope, CallEnvelope, ErrorInfo, ResultEnvelope, WorkerStatus
from tether.tools.mqtt.errors import (
    BrokerConnectionError,
    MqttCallTimeoutError,
    MqttProtocolError,
    MqttToolError,
    RemoteToolArgumentError,
    RemoteToolError,
    RemoteToolExecutionError,
    RemoteToolTimeoutError,
    RemoteUnknownToolError,
)
from tether.tools.mqtt.worker import ToolWorker, WorkerStats

if TYPE_CHECKING:
    from tether.tools.mqtt.broker import EmbeddedBroker
    from tether.tools.mqtt.mosquitto import MosquittoBroker

__all__ = [
    "AckEnvelope",
    "BrokerAddress",
    "BrokerConnectionError",
    "CallEnvelope",
    "ClientStats",
    "EmbeddedBroker",
    "ErrorInfo",
    "MosquittoBroker",
    "MqttCallTimeoutError",
    "MqttProtocolError",
    "MqttToolError",
    "MqttToolRunner",
    "RemoteToolArgumentError",
    "RemoteToolError",
    "RemoteToolExecutionError",
    "RemoteToolTimeoutError",
    "RemoteUnknownToolError",
    "ResultEnvelope",
    "ToolWorker",
    "WorkerStats",
    "WorkerStatus",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"EmbeddedBroker": "tether.tools.mqtt.broker", "MosquittoBroker": "tether.tools.mqtt.mosquitto"},
)
