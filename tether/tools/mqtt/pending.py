"""One call in flight on the client: its attempts, the worker holding it, and its one outcome."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tether.tools.mqtt.envelope import ResultEnvelope, WorkerStatus


@dataclass
class PendingCall:
    """State of one call between ``MqttToolRunner.call`` and its outcome.

    ``result`` resolves once, with the first result envelope to arrive (later ones are duplicates).
    Each attempt has its own ``acked`` and ``lost`` futures; ``lost`` resolves (with a reason) when the worker
    holding the attempt goes offline. ``outcome`` is what the caller and any joined callers receive.
    """

    call_id: str
    tool: str
    args: dict[str, Any]
    result: asyncio.Future[ResultEnvelope]
    outcome: asyncio.Future[Any]
    attempt: int = 0
    worker: str | None = None
    acked: asyncio.Future[None] | None = None
    lost: asyncio.Future[str] | None = None
    waiting_for: str = "nothing yet"


@dataclass
class InFlight:
    """Calls in flight by id, and how many each worker holds (the client-side load used to pick workers)."""

    calls: dict[str, PendingCall] = field(default_factory=dict)
    load: Counter[str] = field(default_factory=Counter)

    def add(self, call: PendingCall) -> None:
        self.calls[call.call_id] = call

    def get(self, call_id: str) -> PendingCall | None:
        return self.calls.get(call_id)

    def remove(self, call: PendingCall) -> None:
        self.assign(call, None)
        self.calls.pop(call.call_id, None)

    def assign(self, call: PendingCall, worker: str | None) -> None:
        """``call``'s current attempt is now held by ``worker`` (``None``: by no known worker)."""
        if call.worker is not None:
            self.load[call.worker] -= 1
            if self.load[call.worker] <= 0:
                del self.load[call.worker]
        call.worker = worker
        if worker is not None:
            self.load[worker] += 1

    def new_attempt(self, call: PendingCall, worker: str | None) -> None:
        loop = asyncio.get_running_loop()
        call.attempt += 1
        call.acked = loop.create_future()
        call.lost = loop.create_future()
        self.assign(call, worker)

    def worker_lost(self, departed: WorkerStatus) -> int:
        """Mark lost every call held by the departed worker, and every call of a tool it served that no
        worker has acked yet (a shared-topic call it took but died before acking); returns how many."""
        n = 0
        for call in self.calls.values():
            if call.lost is None or call.lost.done():
                continue
            unclaimed = call.worker is None and call.acked is not None and not call.acked.done()
            if call.worker == departed.worker_id or (unclaimed and call.tool in departed.tools):
                call.lost.set_result(f"worker {departed.worker_id} went offline")
                n += 1
        return n
