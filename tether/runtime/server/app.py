"""The FastAPI application: routes, API-key check, error mapping and the idle-program reaper.

Every failure is an OpenAI-style error object (``tether.runtime.server.errors``) and the server goes on serving:
malformed JSON or a bad field 400 (naming the field), a prompt over the context 400 (with the limits), an
unknown model 404, a wrong API key 401, a full waiting queue 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.runtime.engine.async_engine import AsyncEngine
from tether.runtime.engine.stats import EngineStats
from tether.runtime.server.chat import chat_completion
from tether.runtime.server.completions import completion
from tether.runtime.server.errors import APIError
from tether.runtime.server.metrics import CONTENT_TYPE
from tether.runtime.server.outcome import TurnOutcomes
from tether.runtime.server.protocol import ChatCompletionRequest, CompletionRequest, parse_body
from tether.runtime.server.serving import ServerConfig, ServerState
from tether.runtime.server.sessions import ProgramTracker
from tether.runtime.server.streaming import sse_stream

log = logging.getLogger(__name__)
T = TypeVar("T")
CLIENT_CLOSED = 499  # counted as the status of a request whose client disconnected before its response


class Served(Protocol):
    """What the shared routes read of a server: its config and its request counter (``ServerState``, and the
    cluster's ingress, ``tether.runtime.cluster.serve.ingress``)."""

    config: ServerConfig
    metrics: Any  # ``.requests``: the ``tether_requests`` counter by endpoint and status


def create_app(
    engine: AsyncEngine,
    config: ServerConfig,
    outcomes: TurnOutcomes,
    on_shutdown: Callable[[str], Awaitable[None]] | None = None,
    shutting_down: Callable[[], bool] | None = None,
) -> FastAPI:
    """The app serving ``engine``, built with ``turn_outcome=outcomes.outcome`` (what each turn's output says,
    and the tool pauses it times for remote clients). The engine is the caller's; ``on_shutdown(status)`` runs
    when the server shuts down (uvicorn re-raises SIGTERM / SIGINT after its shutdown, so code after ``serve()``
    may never run): ``"aborted"`` when requests were cut by the shutdown, else ``"ok"``. ``shutting_down``: whether
    the server has begun to shut down (uvicorn's ``Server.should_exit``), so a request cut then counts as
    aborted by the shutdown rather than by its client."""
    state = ServerState(engine, config, outcomes)
    if shutting_down is not None:
        state.shutting_down = shutting_down
    app = FastAPI(
        title="Tether",
        lifespan=reaper_lifespan(state.programs, state.end_program, on_shutdown, state.shutdown_status),
        docs_url=None,
        redoc_url=None,
    )
    app.state.tether = state
    add_error_handlers(app, state)
    add_auth(app, state)
    add_model_routes(app, state)
    _add_generation_routes(app, state)
    _add_operator_routes(app, state)
    return app


def reaper_lifespan(
    programs: ProgramTracker,
    end_program: Callable[[str, str], Awaitable[bool]],
    on_shutdown: Callable[[str], Awaitable[None]] | None,
    status: Callable[[], str] = lambda: "ok",
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """An app's lifespan: the idle-program reaper (``reap_idle``) runs while the app serves, then
    ``on_shutdown(status())``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(reap_idle(programs, end_program))
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            if on_shutdown is not None:
                await on_shutdown(status())

    return lifespan


def add_error_handlers(app: FastAPI, state: Served) -> None:
    """``APIError`` as its OpenAI-style object (counted in the metrics), and Starlette's HTTP errors (an
    unknown path, a wrong method) in the same shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        state.metrics.requests.labels(request.url.path, str(exc.status)).inc()
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(exc.status_code, str(exc.detail), type=kind).response()


def add_auth(app: FastAPI, state: Served) -> None:
    """With ``config.api_key`` set, every ``/v1`` request needs ``Authorization: Bearer KEY`` (else 401)."""
    config = state.config

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if config.api_key is not None and request.url.path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
                state.metrics.requests.labels(request.url.path, "401").inc()
                return APIError(
                    401, "Incorrect API key provided", type="authentication_error", code="invalid_api_key"
                ).response()
        return await call_next(request)


def add_model_routes(app: FastAPI, state: Served) -> None:
    """``/health`` and ``/v1/models`` (the served model names)."""

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict:
        now = int(time.time())
        data = [
            {"id": m, "object": "model", "created": now, "owned_by": "tether"}
            for m in state.config.served_model_names
        ]
        return {"object": "list", "data": data}


def _add_generation_routes(app: FastAPI, state: ServerState) -> None:
    """The OpenAI endpoints that generate, and the end of a program."""

    async def serve_one(request: Request, endpoint: str) -> Response:
        raw = await request.body()
        try:
            result = await cancel_on_disconnect(
                request, generate(state, endpoint, raw, dict(request.headers))
            )
        except asyncio.CancelledError:
            if state.shutting_down():
                state.cut_by_shutdown += 1
            raise
        if result is None:  # the client left first: its request was aborted, its KV freed
            return client_closed(state, endpoint)
        return respond(result)

    add_generating_routes(app, serve_one)

    @app.post("/v1/programs/{program_id:path}/end")
    async def end_program(program_id: str) -> dict:
        """Release the program's pins and forget it (its client is done). Safe for an unknown program."""
        known = await state.end_program(program_id, "client")
        return {"id": program_id, "object": "program", "ended": True, "known": known}


def _add_operator_routes(app: FastAPI, state: ServerState) -> None:
    """``/integrity`` and ``/metrics``, for operators (and the tests)."""
    engine = state.engine

    @app.get("/integrity")
    async def integrity() -> JSONResponse:
        """``LLMEngine.check_integrity()`` between two steps: 200 with the KV block counts, or 500 naming the
        broken invariant (for operators and the tests: leaked blocks, stray grammar matchers)."""
        try:
            stats = state.metrics.observe(await engine.call(_checked_stats))
        except AssertionError as exc:
            return APIError(500, f"integrity check failed: {exc}", type="internal_error").response()
        return JSONResponse({"ok": True, "kv_blocks": stats.kv_blocks, "programs": stats.programs})

    @app.get("/metrics")
    async def metrics() -> Response:
        state.metrics.observe(await engine.call(lambda e: e.stats()))
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _checked_stats(engine) -> EngineStats:
    engine.check_integrity()
    return engine.stats()


async def generate(
    state: ServerState, endpoint: str, raw: bytes, headers: dict[str, str]
) -> dict | AsyncIterator[bytes]:
    """One request to a generating endpoint (``/v1/chat/completions``, ``/v1/completions``): the response's
    JSON, or its server-sent events. Raises ``APIError`` before any output (a bad body, an unknown model, a full
    queue). A cluster's replica runs its requests through this too."""
    if endpoint == "/v1/chat/completions":
        result = await chat_completion(state, parse_body(raw, ChatCompletionRequest), headers)
    elif endpoint == "/v1/completions":
        result = await completion(state, parse_body(raw, CompletionRequest), headers)
    else:
        raise ValueError(f"not a generating endpoint: {endpoint!r}")
    state.metrics.requests.labels(endpoint, "200").inc()
    return result if isinstance(result, dict) else sse_stream(result)


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T | None:
    """``work``'s result, or ``None`` when the client disconnects first: then ``work`` is cancelled, which aborts
    its engine request (a streamed response is watched by Starlette itself once it starts)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server cancelled this request (its shutdown's grace ran out)
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def add_generating_routes(app: FastAPI, serve_one: Callable[[Request, str], Awaitable[Response]]) -> None:
    """``POST /v1/chat/completions`` and ``/v1/completions``, each answered by ``serve_one(request, path)``."""

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await serve_one(request, "/v1/chat/completions")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await serve_one(request, "/v1/completions")


def client_closed(state: Served, endpoint: str) -> Response:
    """A request whose client left before its response: counted under ``CLIENT_CLOSED``."""
    state.metrics.requests.labels(endpoint, str(CLIENT_CLOSED)).inc()
    return Response(status_code=CLIENT_CLOSED)


def respond(result: dict | AsyncIterator[bytes]) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return StreamingResponse(result, media_type="text/event-stream")


async def reap_idle(programs: ProgramTracker, end_program: Callable[[str, str], Awaitable[bool]]) -> None:
    """Every ``idle_s / 4`` (0.05 to 5 s), the programs idle past ``programs.idle_s`` end
    (``end_program(pid, "idle")``), so clients that never say goodbye leak no pins."""
    period = max(0.05, min(5.0, programs.idle_s / 4))
    while True:
        await asyncio.sleep(period)
        try:
            idle = programs.idle()
            for pid in idle:
                await end_program(pid, "idle")
        except Exception:  # noqa: BLE001 - the reaper must outlive one failure
            log.exception("ending idle programs failed")
            continue
        if idle:
            log.info("ended %d idle programs", len(idle))
