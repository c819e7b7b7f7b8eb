"""The cluster's OpenAI-compatible app: the routes of ``tether serve``, in front of engine replicas on Ray Serve.

A generating request is checked here (its body, 400 naming the field), gets its program's turn number when the
client sent none (``tether.turn``: the replicas' own counts restart when a program moves), and goes to a replica
through the deployment's handle, whose request router places it (``request_routers.py``). The replica answers
with a ``ReplicaHead`` and, for a stream, the events.

Faults: a replica that dies before its response starts costs nothing but time: the request is sent again and
the router places it on a live replica, where its context is prefilled again (the client sent the whole
context; nothing is answered twice, since nothing was answered). A stream cut after it started ends with an
``error`` event (the OpenAI SDK raises it): its text cannot be taken back. Each loss, retry and move is counted
in ``/metrics`` and written to the trace (``cluster`` events).

A program ends (``POST /v1/programs/{id}/end``, or idle past ``program_idle_s`` here) on every replica it ran on.
A turn the ``program`` router moved releases the program on the replica it left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray.exceptions import ActorUnavailableError, RayActorError

from tether.runtime.cluster.serve.calls import ReplicaCall, ReplicaHead, prompt_text
from tether.runtime.cluster.serve.metrics import ClusterMetrics
from tether.runtime.cluster.serve.routing import RuleRouting, TetherRouting, live_router
from tether.runtime.server.app import (
    add_auth,
    add_error_handlers,
    add_generating_routes,
    add_model_routes,
    cancel_on_disconnect,
    client_closed,
    reaper_lifespan,
)
from tether.runtime.server.errors import APIError
from tether.runtime.server.metrics import CONTENT_TYPE, MetricsReport
from tether.runtime.server.protocol import ChatCompletionRequest, CompletionRequest, parse_body
from tether.runtime.server.serving import ServerConfig
from tether.runtime.server.sessions import SESSION_HEADER, ProgramTracker, program_id_of
from tether.runtime.server.streaming import DONE, sse
from tether.runtime.tracing import ENGINE_PROGRAM, TraceEvent

log = logging.getLogger(__name__)

REPLICA_LOST = (RayActorError, ActorUnavailableError)  # the replica died or cannot be reached
REPLICA_HEADER = "x-tether-replica"  # on every generated response: the replica that served it
MAX_ATTEMPTS = 4  # a request is sent at most this many times
CONTROL_TIMEOUT_S = 30.0
BODY_MODELS = {"/v1/chat/completions": ChatCompletionRequest, "/v1/completions": CompletionRequest}


class ClusterIngress:
    """The app's state: the handle to the replicas, program tracking, metrics and the trace."""

    def __init__(
        self,
        handle: Any,
        app_name: str,
        deployment: str,
        config: ServerConfig,
        emit: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        """``handle``: the replicas' ``DeploymentHandle``; ``app_name`` / ``deployment``: where its router
        registers; ``emit``: where ``cluster`` trace events go."""
        self.handle, self.app_name, self.deployment = handle, app_name, deployment
        self.config = config
        self.metrics = ClusterMetrics()
        self.programs = ProgramTracker(config.program_idle_s)
        self.touched: dict[str, set[str]] = {}  # program -> the replicas it ran on
        self._emit = emit
        self._lost_seen = 0

    async def ready(self, replicas: int, timeout_s: float = 120.0) -> None:
        """Wait until the router routes to ``replicas`` replicas (one untargeted call starts the router);
        ``TimeoutError`` after ``timeout_s``."""
        await self.handle.control.remote(ReplicaCall("stats"))
        deadline = time.monotonic() + timeout_s
        while (router := self.router()) is None or len(router.live_replicas()) < replicas:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replicas} replicas were not routable after {timeout_s:.0f} s")
            await asyncio.sleep(0.1)

    # -- the router and the trace ---------------------------------------------------------------------------
    def router(self) -> TetherRouting | None:
        return live_router(self.app_name, self.deployment)

    def event(self, action: str, program_id: str | None = None, **attrs: Any) -> None:
        if self._emit is not None:
            self._emit(
                TraceEvent(
                    "cluster", program_id or ENGINE_PROGRAM, time.time(), attrs={"action": action, **attrs}
                )
            )

    def _note_losses(self) -> None:
        router = self.router()
        if router is None:
            return
        for uid in router.lost[self._lost_seen :]:
            self.event("replica_lost", replica=uid)
            for replicas in self.touched.values():
                replicas.discard(uid)
        self._lost_seen = len(router.lost)

    # -- generation -----------------------------------------------------------------------------------------
    async def generate(self, endpoint: str, raw: bytes, headers: dict[str, str]) -> Response:
        body = parse_body(raw, BODY_MODELS[endpoint])  # a bad body is a 400 here, naming the field
        pid = program_id_of(body, headers.get(SESSION_HEADER))
        call = ReplicaCall(
            "generate", pid, endpoint, self._with_turn(raw, body, pid), headers, prompt_text(json.loads(raw))
        )
        if pid is not None:
            self.programs.started(pid)
        try:
            head, events = await self._send(call)
            self.metrics.requests.labels(endpoint, str(head.status)).inc()
            await self._placed(call, head.replica_id)
        except BaseException:
            self._finished(pid)
            raise
        headers = {**head.headers, REPLICA_HEADER: head.replica_id}
        if not head.stream:
            self._finished(pid)
            return JSONResponse(head.body, status_code=head.status, headers=headers)
        return StreamingResponse(self._relay(call, events), media_type="text/event-stream", headers=headers)

    def _finished(self, pid: str | None) -> None:
        if pid is not None:
            self.programs.finished(pid)

    def _with_turn(self, raw: bytes, body: Any, pid: str | None) -> bytes:
        """The body, with ``tether.turn`` set to this program's count when the client sent none."""
        if pid is None:
            return raw
        hints = self.programs.hints(body, pid)  # counts the turn
        ext = body.tether or {}
        if ext.get("turn") is not None or hints is None:
            return raw
        doc = json.loads(raw)
        doc["tether"] = {**(doc.get("tether") or {}), "turn": hints.turn}
        return json.dumps(doc).encode()

    async def _send(self, call: ReplicaCall) -> tuple[ReplicaHead, AsyncIterator[Any]]:
        """The replica's head and the rest of its answer; a replica lost before its head is replaced."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            events = self.handle.options(stream=True).generate.remote(call)
            try:
                head = await events.__anext__()
            except asyncio.CancelledError:  # the client left: Ray cancels the replica's call, which aborts it
                events.cancel()
                raise
            except REPLICA_LOST as exc:
                self._note_losses()
                self.metrics.turns_retried.inc()
                self.event("turn_retried", call.program_id, attempt=attempt, error=type(exc).__name__)
                log.warning(
                    "request of program %s: replica lost (%s); sending it again", call.program_id, exc
                )
                continue
            return head, events
        raise APIError(
            503, f"no replica answered after {MAX_ATTEMPTS} tries", type="server_busy", code="replicas_lost"
        )

    async def _relay(self, call: ReplicaCall, events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        """A stream's events; the program's request ends with the stream. A client that leaves early cancels the
        replica's generation (Ray cancels the call; the replica's engine aborts the request)."""
        done = False
        try:
            async for chunk in events:
                yield chunk
            done = True
        except REPLICA_LOST as exc:
            done = True
            self._note_losses()
            self.metrics.streams_broken.inc()
            self.event("stream_broken", call.program_id, error=type(exc).__name__)
            yield sse(
                APIError(
                    503, "the replica serving this stream died", type="server_error", code="replica_lost"
                ).body()
            )
            yield DONE
        finally:
            if not done:
                events.cancel()  # type: ignore[attr-defined]
            self._finished(call.program_id)

    async def _placed(self, call: ReplicaCall, replica: str) -> None:
        """Remember where the program ran; release it where the router moved it from."""
        if call.program_id is None:
            return
        self.touched.setdefault(call.program_id, set()).add(replica)
        router = self.router()
        left = router.moves.pop(call.call_id, None) if router is not None else None
        if left is not None:
            self.event("turn_moved", call.program_id, **{"from": left, "to": replica})
            self.touched[call.program_id].discard(left)
            await self._control(ReplicaCall("end", call.program_id, target=left, reason="moved"))

    # -- control --------------------------------------------------------------------------------------------
    async def _control(self, call: ReplicaCall) -> Any:
        """A targeted call; ``None`` when its replica is gone or does not answer in time."""
        router = self.router()
        if router is None or call.target not in router.live_replicas():
            return None
        try:
            return await asyncio.wait_for(self.handle.control.remote(call), CONTROL_TIMEOUT_S)
        except (*REPLICA_LOST, asyncio.TimeoutError) as exc:
            self._note_losses()
            log.warning("%s on replica %s failed: %s", call.op, call.target, exc)
            return None

    async def end_program(self, pid: str, reason: str) -> bool:
        known = self.programs.forget(pid)
        router = self.router()
        if isinstance(router, RuleRouting):
            router.program_ended(pid)
        for replica in sorted(self.touched.pop(pid, ())):
            await self._control(ReplicaCall("end", pid, target=replica, reason=reason))
        return known

    async def observe(self) -> dict[str, MetricsReport]:
        """Every live replica's report, taken into the metrics."""
        self._note_losses()
        router = self.router()
        live = sorted(router.live_replicas()) if router is not None else []
        answers = await asyncio.gather(*(self._control(ReplicaCall("stats", target=r)) for r in live))
        reports = {r: a for r, a in zip(live, answers) if isinstance(a, MetricsReport)}
        moved = router.moved_turns if router is not None else 0
        self.metrics.observe(reports, len(router.lost) if router is not None else 0, moved)
        return reports

    async def integrity(self) -> dict[str, Any]:
        """Every live replica's ``check_integrity()``: its KV block counts; ``AssertionError`` naming the
        replica and the broken invariant."""
        router = self.router()
        live = sorted(router.live_replicas()) if router is not None else []
        out = {}
        for r in live:
            try:
                out[r] = await self._control(ReplicaCall("integrity", target=r))
            except AssertionError as exc:
                raise AssertionError(f"replica {r}: {exc}") from None
        return out

    async def replicas(self) -> list[dict[str, Any]]:
        """The live replicas and what each reports to the router (``GET /replicas``)."""
        router = self.router()
        if router is None:
            return []
        out = []
        for uid, r in sorted(router.live_replicas().items()):
            stats = dict(r.routing_stats or {})
            stats["programs"] = len(stats.get("programs", ()))
            out.append({"replica_id": uid, "node_id": r.node_id, **stats})
        return out


def create_cluster_app(
    ingress: ClusterIngress, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    """The app serving ``ingress``: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``,
    ``/v1/programs/{id}/end``, ``/health``, ``/metrics`` and ``/replicas``."""
    lifespan = reaper_lifespan(ingress.programs, ingress.end_program, on_shutdown)
    app = FastAPI(title="Tether cluster", lifespan=lifespan, docs_url=None, redoc_url=None)
    add_error_handlers(app, ingress)
    add_auth(app, ingress)
    add_model_routes(app, ingress)
    _add_routes(app, ingress)
    return app


def _add_routes(app: FastAPI, ingress: ClusterIngress) -> None:
    async def serve_one(request: Request, endpoint: str) -> Response:
        raw = await request.body()
        response = await cancel_on_disconnect(request, ingress.generate(endpoint, raw, dict(request.headers)))
        if response is None:  # the client left first
            return client_closed(ingress, endpoint)
        return response

    add_generating_routes(app, serve_one)

    @app.post("/v1/programs/{program_id:path}/end")
    async def end_program(program_id: str) -> dict:
        known = await ingress.end_program(program_id, "client")
        return {"id": program_id, "object": "program", "ended": True, "known": known}

    @app.get("/metrics")
    async def metrics() -> Response:
        await ingress.observe()
        return Response(ingress.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/integrity")
    async def integrity() -> JSONResponse:
        try:
            blocks = await ingress.integrity()
        except AssertionError as exc:
            return APIError(500, f"integrity check failed: {exc}", type="internal_error").response()
        return JSONResponse({"ok": True, "replicas": blocks})

    @app.get("/replicas")
    async def replicas() -> dict:
        return {"object": "list", "data": await ingress.replicas()}
