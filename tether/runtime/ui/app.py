"""``create_ui_app(root)``: the page (``/``, ``/static``) and its JSON API over the runs under ``root``.

    GET /api/runs                          {"root", "runs": [summary, ...]}      newest first
    GET /api/runs/{id}                     run.json, events of every trace, offsets, truncated traces
    GET /api/runs/{id}/export?format=F     a download: chrome | otlp-json | jsonl (&trace=NAME: one trace)
    GET /api/runs/{id}/live?offsets=JSON   server-sent events until the run is no longer "running"

Errors are ``{"error": {"type", "message", ...}}``: an unknown run 404, a malformed trace or ``run.json``
422 (with ``path``, ``line``, ``reason``), a bad export format or trace name 400.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.runtime.tracing import RunNotFoundError, TraceFormatError, load_run
from tether.runtime.tracing.store import run_meta
from tether.runtime.ui.exports import FORMATS, export_text, filename
from tether.runtime.ui.live import error_body, follow_run
from tether.runtime.ui.runs import RunIndex, run_view

STATIC = Path(__file__).parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}


def create_ui_app(root: Path, *, poll_s: float = 0.3) -> FastAPI:
    """The UI over the run store at ``root`` (which need not exist yet)."""
    root = Path(root)
    index = RunIndex(root)
    app = FastAPI(title="Tether UI", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RunNotFoundError)
    async def _not_found(request: Request, exc: RunNotFoundError) -> JSONResponse:
        return _error(404, error_body(exc))

    @app.exception_handler(TraceFormatError)
    async def _malformed(request: Request, exc: TraceFormatError) -> JSONResponse:
        return _error(422, error_body(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "bad_request"
        return _error(exc.status_code, {"type": kind, "message": str(exc.detail)})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_NO_CACHE)

    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/api/runs")
    def runs() -> dict:
        return {"root": str(root.resolve()), "runs": index.summaries()}

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> dict:
        return run_view(root, run_id)

    @app.get("/api/runs/{run_id}/export")
    def export(run_id: str, format: str = "jsonl", trace: str | None = None) -> Response:
        run = load_run(root, run_id)
        try:
            text = export_text(run, format, trace)
        except ValueError as exc:  # an unknown format or trace
            return _error(400, {"type": "bad_request", "message": str(exc)})
        disposition = f'attachment; filename="{filename(run_id, format, trace)}"'
        return Response(text, media_type=FORMATS[format][0], headers={"Content-Disposition": disposition})

    @app.get("/api/runs/{run_id}/live")
    async def live(run_id: str, request: Request, offsets: str = "{}") -> StreamingResponse:
        await asyncio.to_thread(run_meta, root, run_id)  # 404 / 422 as JSON before the stream starts
        stream = follow_run(
            root, run_id, _offsets(offsets), disconnected=request.is_disconnected, poll_s=poll_s
        )
        headers = {**_NO_CACHE, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _offsets(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, int) and v >= 0 for v in value.values()):
        raise StarletteHTTPException(400, 'offsets must be a JSON object of byte offsets: {"main": 1234}')
    return value


def _error(status: int, body: dict) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status)
