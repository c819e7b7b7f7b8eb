"""``WorkerRoster``: the client's view of which workers are online and where to publish a call.

Workers publish a retained ``WorkerStatus`` on ``tether/workers/<id>/status`` when they come online. Their
MQTT last will is a retained offline status, so the broker announces a worker killed mid-call as soon as its
TCP connection drops (or after 1.5 keepalives for a hung host); a worker that stops cleanly clears its
status with an empty payload.

Routing a call for ``tool``:

- some online worker serving ``tool`` subscribed with a shared subscription -> publish on the per-tool topic;
  the broker hands it to one worker of the group, and the worker's ack says which;
- otherwise (amqtt: no shared subscriptions) -> the client picks a worker: fewest of this client's calls in
  flight, ties broken round-robin; publish on that worker's direct topic;
- no worker serves ``tool`` -> wait (event-driven) until one comes online.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tether.tools.mqtt import topics
from tether.tools.mqtt.envelope import WorkerStatus


@dataclass(frozen=True)
class Route:
    """Where to publish one attempt of a call; ``worker`` is ``None`` for the shared topic (the ack names it)."""

    topic: str
    worker: str | None


class WorkerRoster:
    """Online workers by id. ``update`` is fed every status message; ``on_offline`` callbacks hear departures."""

    def __init__(self) -> None:
        self._workers: dict[str, WorkerStatus] = {}
        self._changed: asyncio.Event = asyncio.Event()
        self._turn = itertools.count()
        self._offline_listeners: list[Callable[[WorkerStatus], None]] = []

    def on_offline(self, listener: Callable[[WorkerStatus], None]) -> None:
        """Call ``listener`` with the last online status of each worker that goes offline."""
        self._offline_listeners.append(listener)

    def update(self, worker_id: str, status: WorkerStatus | None) -> None:
        """Record a status message: ``None`` (offline status or empty payload) means the worker went offline."""
        if status is None:
            departed = self._workers.pop(worker_id, None)
            if departed is not None:
                for listener in self._offline_listeners:
                    listener(departed)
        else:
            self._workers[worker_id] = status
        self._changed.set()
        self._changed = asyncio.Event()

    def clear(self) -> None:
        """Forget every worker without telling the offline listeners (a new connection: statuses come again)."""
        self._workers.clear()
        self._changed.set()
        self._changed = asyncio.Event()

    def online(self, worker_id: str) -> bool:
        return worker_id in self._workers

    def workers(self) -> list[WorkerStatus]:
        return sorted(self._workers.values(), key=lambda w: w.worker_id)

    def serving(self, tool: str) -> list[WorkerStatus]:
        return [w for w in self.workers() if tool in w.tools]

    def choose(self, tool: str, load: Mapping[str, int]) -> Route | None:
        """Where to publish a call of ``tool`` now; ``load`` is this client's calls in flight per worker."""
        candidates = self.serving(tool)
        if not candidates:
            return None
        if any(w.shared for w in candidates):
            return Route(topics.tool_call(tool), None)
        least = min(load.get(w.worker_id, 0) for w in candidates)
        idle = [w for w in candidates if load.get(w.worker_id, 0) == least]
        chosen = idle[next(self._turn) % len(idle)]
        return Route(topics.worker_call(chosen.worker_id), chosen.worker_id)

    async def wait_route(self, tool: str, load: Mapping[str, int]) -> Route:
        """``choose``, waiting for a status change as long as no worker serves ``tool`` (no polling)."""
        while True:
            changed = self._changed
            route = self.choose(tool, load)
            if route is not None:
                return route
            await changed.wait()
