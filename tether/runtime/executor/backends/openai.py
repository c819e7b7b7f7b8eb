"""``OpenAIBackend``: LLM calls on any OpenAI-compatible server (vLLM, SGLang, OpenAI, ``tether serve``) through
the ``openai`` SDK's async client (``openai.AsyncOpenAI``).

The SDK sends each request, retries it (``max_retries``) on a connection error, a timeout, 408, 409, 429 and
5xx, waiting what the server's ``Retry-After`` / ``retry-after-ms`` asks (up to two minutes; else exponential
backoff from 0.5 s), and streams (``stream``: text deltas as the server sends them, so a planner dispatches a
task the moment its plan line is complete). What it raises after its retries becomes the executor's typed
errors (``openai_reply.backend_error``): ``LLMServerError`` (status, the body field at fault, the error code),
``LLMTimeoutError``, ``LLMBackendError``.

Session affinity: every request of a program carries its id as ``session_id`` and ``prompt_cache_key`` in
the body and in the ``X-Session-Id`` header (configurable), so a router that hashes on any of them sends all
turns of a program to the replica that holds its prefix cache.

A Tether server (``tether serve``: its ``/models`` entries are ``owned_by: "tether"``; or ``tether_server=True``)
also gets the ``tether`` extension object, ``ProgramHints.to_wire()`` (program id, turn, and the next tools,
remaining turns, last turn and prefix group where the graph fixes them: the hints rule), and ``end_program``
releases the program's pins there (``POST /programs/{id}/end``).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import httpx2
import openai

from tether.runtime.executor.backends.openai_reply import (
    TRANSPORT_ERRORS,
    MalformedReply,
    StreamedReply,
    backend_error,
    parse_reply,
)
from tether.runtime.executor.llm import LLMDelta, LLMRequest, LLMResult

SESSION_HEADER = "X-Session-Id"
_CHAT_FIELDS = ("model", "messages", "max_tokens", "temperature", "tools", "tool_choice", "response_format")
_SDK_FIELDS = {
    True: frozenset((*_CHAT_FIELDS, "prompt_cache_key")),
    False: frozenset(("model", "prompt", "max_tokens", "temperature")),
}
"""The body fields the SDK's ``create`` takes as arguments (chat: ``True``); the others go as ``extra_body``."""


async def _no_api_key() -> str:
    return ""


class OpenAIBackend:
    """Implements ``tether.runtime.executor.llm.StreamingLLMBackend``. Chat messages go to ``/chat/completions``,
    a raw prompt to ``/completions``. An ``output_schema`` is sent as a JSON-schema ``response_format``; offered
    tools as ``tools`` with ``tool_choice``; a ``grammar`` as vLLM's ``structured_outputs.grammar``. Messages
    (with ``tool_calls`` / ``tool_call_id``) are sent as they are. ``stream`` sends ``stream: true`` (with
    ``stream_options.include_usage``) and yields each text piece as it arrives, then the ``LLMResult``."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        session_header: str = SESSION_HEADER,
        extra_body: dict[str, Any] | None = None,
        client: httpx.AsyncClient | httpx2.AsyncClient | None = None,
        tether_server: bool | None = None,
    ) -> None:
        """``api_key``: sent as ``Authorization: Bearer KEY`` (``None``: no header; ``OPENAI_API_KEY`` is never
        read). ``timeout``: seconds per attempt (connect, and each read of a stream); ``max_retries``: the SDK's
        retries of an attempt (0: none). ``client``: the HTTP client the SDK uses (the caller's: ``close``
        leaves it open). ``tether_server``: send Tether's hints and program ends (``None``: ask ``/models`` once
        whether the server is Tether)."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout, self.max_retries = timeout, max_retries
        self.session_header = session_header
        self.extra_body = dict(extra_body or {})
        self.tether_server = tether_server
        self._detect_lock = asyncio.Lock()
        self._owns_client = client is None
        self.client = client if client is not None else openai.DefaultAsyncHttpxClient(timeout=timeout)
        self._auth: dict[str, Any] = {} if api_key else {"Authorization": openai.Omit()}
        self.openai = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or _no_api_key,
            timeout=timeout,
            max_retries=max_retries,
            http_client=self.client,
        )

    def request_body(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body ``request`` is sent as (without ``stream``): what the SDK takes as arguments and, as
        ``extra_body``, the rest (session fields, ``structured_outputs``, ``tether``). The backend's ``extra_body``
        is merged in after the sampling and session fields (it may replace them), before the messages."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "session_id": request.program_id,
            "prompt_cache_key": request.program_id,
            **self.extra_body,
        }
        if request.messages is not None:
            body["messages"] = [dict(m) for m in request.messages]
            if request.tools:
                body["tools"] = list(request.tools)
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
            if request.output_schema is not None:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.node_id, "schema": request.output_schema},
                }
        else:
            body["prompt"] = request.prompt
        if request.grammar is not None:  # vLLM's extension (SGLang reads "ebnf"); OpenAI itself has none
            body["structured_outputs"] = {"grammar": request.grammar}
        if self.tether_server:
            body["tether"] = replace(request.hints, program_id=request.program_id).to_wire()
        return body

    def url(self, request: LLMRequest) -> str:
        """The endpoint ``request`` goes to."""
        return f"{self.base_url}/{'chat/completions' if request.messages is not None else 'completions'}"

    async def is_tether_server(self) -> bool:
        """Whether the server is ``tether serve``: ``GET /models`` once, without retries. An answer that is
        not a model list (an error status, another shape) counts as not; an unreachable server is asked again
        at the next call."""
        if self.tether_server is None:
            async with self._detect_lock:
                if self.tether_server is None:
                    self.tether_server = await self._probe_tether()
        return bool(self.tether_server)

    async def _probe_tether(self) -> bool | None:
        options: Any = {"headers": self._auth, "max_retries": 0}
        try:
            response = await self.openai.get("/models", cast_to=httpx2.Response, options=options)
            return "tether" in {m.get("owned_by") for m in response.json().get("data", [])}
        except openai.APIConnectionError:
            return None
        except (*TRANSPORT_ERRORS, ValueError, AttributeError, TypeError):
            return False

    async def _create(self, request: LLMRequest, *, stream: bool) -> Any:
        chat = request.messages is not None
        await self.is_tether_server()
        body = self.request_body(request)
        args = {k: v for k, v in body.items() if k in _SDK_FIELDS[chat]}
        extra = {k: v for k, v in body.items() if k not in _SDK_FIELDS[chat]}
        if stream:
            args.update(stream=True, stream_options={"include_usage": True})
        headers = {**self._auth, self.session_header: request.program_id, "X-Request-Id": request.request_id}
        endpoint = self.openai.chat.completions if chat else self.openai.completions
        return await endpoint.create(**args, extra_body=extra, extra_headers=headers)

    async def complete(self, request: LLMRequest) -> LLMResult:
        try:
            reply = await self._create(request, stream=False)
            return parse_reply(_as_dict(reply), request.messages is not None)
        except (*TRANSPORT_ERRORS, MalformedReply) as exc:
            raise backend_error(exc, request, self.url(request), self.timeout) from exc

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        """Each piece of the reply's text as the server sends it, then ``LLMDelta("", result)``. Tool calls
        arrive in the result only. Closing the iterator early closes the connection (the server aborts)."""
        reply = StreamedReply(chat=request.messages is not None)
        try:
            chunks = await self._create(request, stream=True)
            async with chunks:
                async for chunk in chunks:
                    piece = reply.feed(_as_dict(chunk))
                    if piece:
                        yield LLMDelta(piece, attempt=request.attempt)
            result = reply.result()
        except (*TRANSPORT_ERRORS, MalformedReply) as exc:
            raise backend_error(exc, request, self.url(request), self.timeout) from exc
        yield LLMDelta("", result, request.attempt)

    async def end_program(self, program_id: str) -> None:
        """On a Tether server, release the program's pins; other servers' caches follow their own policy. A
        failure is not an error of the program (the server ends idle programs itself), so it is not retried."""
        if self.tether_server:
            path = f"/programs/{urllib.parse.quote(program_id, safe='')}/end"
            try:
                await self.openai.post(
                    path, cast_to=httpx2.Response, options={"headers": self._auth, "max_retries": 0}
                )
            except TRANSPORT_ERRORS:
                pass

    async def close(self) -> None:
        if self._owns_client:
            await self.openai.close()


def _as_dict(reply: Any) -> dict[str, Any]:
    """A reply (the SDK's model of it) as the JSON object the server sent."""
    data = reply.to_dict() if isinstance(reply, openai.BaseModel) else reply
    if not isinstance(data, dict):
        raise MalformedReply(f"the reply is {type(data).__name__} {str(data)[:120]!r}, not a JSON object")
    return data
