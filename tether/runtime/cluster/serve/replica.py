"""``EngineReplica``: one replica of a Ray Serve deployment of Tether's engine (``tether serve --replicas N``).

Each replica is a whole single-process server without the HTTP socket: its own engine (``Deployment``), the
server's request handling (``tether.runtime.server.app.generate``, the same code ``tether serve`` runs), its
program tracker and idle reaper, its metrics. The ingress (``ingress.py``) sends it ``ReplicaCall`` values; it
reports what the router needs through Ray Serve's routing stats (``record_routing_stats``).

The class imports no Ray: ``launch.py`` wraps it with ``serve.deployment`` (its ``async __init__`` calls
``start``), and a unit test builds it with ``EngineReplica.create``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tether.runtime.cluster.serve.calls import ReplicaCall, ReplicaHead
from tether.runtime.deployment import Deployment
from tether.runtime.engine.config import EngineConfig
from tether.runtime.server.app import generate, reap_idle
from tether.runtime.server.errors import APIError
from tether.runtime.server.metrics import MetricsReport
from tether.runtime.server.outcome import TurnOutcomes
from tether.runtime.server.serving import ServerConfig, ServerState


@dataclass(frozen=True)
class ReplicaSpec:
    """What every replica is built from: the engine's config and the server's (model names, idle timeout)."""

    engine: EngineConfig
    server: ServerConfig


class EngineReplica:
    @classmethod
    async def create(cls, spec: ReplicaSpec, replica_id: str | None = None) -> EngineReplica:
        replica = cls.__new__(cls)
        await replica.start(spec, replica_id)
        return replica

    async def start(self, spec: ReplicaSpec, replica_id: str | None = None) -> None:
        """Start the engine. ``replica_id``: this replica's name in the router's eyes (default: the Ray Serve
        replica id, read from the replica context)."""
        self.replica_id = replica_id or _serve_replica_id()
        self.deployment = Deployment()
        outcomes = TurnOutcomes(self.deployment.stats)  # clients run the tools: their pauses time them
        backend = await self.deployment.start_local_engine(spec.engine, turn_outcome=outcomes.outcome)
        self.engine = backend.engine
        self.state = ServerState(backend.engine, spec.server, outcomes)
        self._reaper = asyncio.create_task(reap_idle(self.state.programs, self.state.end_program))

    async def generate(self, call: ReplicaCall) -> AsyncIterator[ReplicaHead | bytes]:
        """``call.op == "generate"``: first a ``ReplicaHead`` (the whole response, or ``stream``), then the
        stream's events. An ``APIError`` is a head with its status and error object: this replica keeps serving."""
        try:
            result = await generate(self.state, call.endpoint, call.body, call.headers)
        except APIError as exc:
            self.state.metrics.requests.labels(call.endpoint, str(exc.status)).inc()
            yield ReplicaHead(self.replica_id, exc.status, exc.body(), exc.headers)
            return
        if isinstance(result, dict):
            yield ReplicaHead(self.replica_id, 200, result)
            return
        try:
            yield ReplicaHead(self.replica_id, stream=True)
            async for chunk in result:
                yield chunk
        finally:  # also when the ingress cancels the call (its client left): the engine aborts the request
            await result.aclose()  # type: ignore[attr-defined]

    async def control(self, call: ReplicaCall) -> Any:
        """``end``: the program's pins here are released and it is forgotten (the client ended it, it went idle,
        or its turn moved to another replica: ``call.reason``); returns whether it was known. ``stats``: this
        replica's ``MetricsReport``. ``integrity``: ``check_integrity()`` between two steps, the KV block counts
        (``AssertionError`` naming a broken invariant)."""
        if call.op == "end":
            assert call.program_id is not None
            return await self.state.end_program(call.program_id, call.reason)
        if call.op == "stats":
            return await self.report()
        if call.op == "integrity":
            return await self.engine.call(_checked_blocks)
        raise ValueError(f"not a control call: {call.op!r}")

    async def report(self) -> MetricsReport:
        self.state.metrics.observe(await self.engine.call(lambda e: e.stats()))
        return self.state.metrics.report()

    async def record_routing_stats(self) -> dict[str, Any]:
        """Ray Serve's routing stats, read by the router (``RunningReplica.routing_stats``): the queue, free and
        total GPU KV blocks, pins and parked programs, the CPU blocks they hold, and the programs themselves."""
        return await self.engine.call(_routing_stats)

    async def check_health(self) -> None:
        """Ray Serve's health check: the engine's thread must be alive (``EngineError`` otherwise)."""
        await self.engine.call(lambda e: None)

    async def close(self) -> None:
        """Stop the reaper and the engine (Ray Serve's shutdown hook calls it: ``launch.py``)."""
        self._reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reaper
        await self.deployment.close()


def _checked_blocks(engine) -> dict[str, int]:
    engine.check_integrity()
    return engine.stats().kv_blocks


def _routing_stats(engine) -> dict[str, Any]:
    load = engine.load()
    pinned, parked = engine.held_programs()
    kv = engine.kv_manager
    return {
        "queue_len": load.waiting + load.running,
        "waiting": load.waiting,
        "running": load.running,
        "free_blocks": load.free_blocks,
        "num_blocks": load.num_blocks,
        "pins": len(pinned),
        "parked": len(parked),
        "parked_blocks": kv.num_cpu_blocks - kv.num_free_cpu_blocks,
        "programs": sorted(pinned | parked),
        "pid": os.getpid(),
    }


def _serve_replica_id() -> str:
    from ray import serve

    return serve.get_replica_context().replica_id.unique_id
