"""``OpenAIBackend``: LLM calls on any OpenAI-compatible server (vLLM, SGLang, OpenAI) over httpx.

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
import json
import urllib.parse
from dataclasses import replace
from typing import Any

import httpx

from tether.runtime.executor.errors import LLMBackendError
from tether.runtime.executor.llm import LLMRequest, LLMResult, LLMToolCall, Usage

SESSION_HEADER = "X-Session-Id"


class OpenAIBackend:
    """Implements ``tether.runtime.executor.llm.LLMBackend``. Chat messages go to ``/chat/completions``, a raw
    prompt to ``/completions``. An ``output_schema`` is sent as a JSON-schema ``response_format``; offered
    tools as ``tools`` with ``tool_choice``; a ``grammar`` as vLLM's ``structured_outputs.grammar``. Messages
    (with ``tool_calls`` / ``tool_call_id``) are sent as they are. No ``stream``: a streamed node gets the
    whole reply as one delta (``stream_llm``). HTTP and protocol failures raise ``LLMBackendError`` naming the node."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        session_header: str = SESSION_HEADER,
        extra_body: dict[str, Any] | None = None,
        client: httpx.AsyncClient | None = None,
        tether_server: bool | None = None,
    ) -> None:
        """``tether_server``: send Tether's hints and program ends (``None``: ask ``/models`` once whether the
        server is Tether)."""
        self.base_url = base_url.rstrip("/")
        self.tether_server = tether_server
        self._detect_lock = asyncio.Lock()
        self.model = model
        self.session_header = session_header
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout, headers=headers)

    def request_body(self, request: LLMRequest) -> dict[str, Any]:
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

    async def _is_tether(self) -> bool:
        """Whether the server is ``tether serve`` (asked once; a failed probe counts as not)."""
        if self.tether_server is None:
            async with self._detect_lock:
                if self.tether_server is None:
                    try:
                        response = await self.client.get(f"{self.base_url}/models")
                        owners = {m.get("owned_by") for m in response.json().get("data", [])}
                        self.tether_server = response.status_code == 200 and "tether" in owners
                    except (httpx.HTTPError, ValueError, AttributeError):
                        self.tether_server = False
        return self.tether_server

    async def complete(self, request: LLMRequest) -> LLMResult:
        chat = request.messages is not None
        url = f"{self.base_url}/{'chat/completions' if chat else 'completions'}"
        await self._is_tether()
        headers = {self.session_header: request.program_id, "X-Request-Id": request.request_id}
        try:
            response = await self.client.post(url, json=self.request_body(request), headers=headers)
        except httpx.HTTPError as exc:
            raise LLMBackendError(request.node_id, f"{type(exc).__name__}: {exc} ({url})") from None
        if response.status_code >= 400:
            raise LLMBackendError(
                request.node_id, f"HTTP {response.status_code} from {url}: {response.text[:300]}"
            )
        try:
            return _parse(response.json(), chat)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMBackendError(request.node_id, f"malformed response from {url}: {exc!r}") from None

    async def end_program(self, program_id: str) -> None:
        """On a Tether server, release the program's pins; other servers' caches follow their own policy. A
        failure is not an error of the program (the server ends idle programs itself)."""
        if self.tether_server:
            url = f"{self.base_url}/programs/{urllib.parse.quote(program_id, safe='')}/end"
            try:
                await self.client.post(url)
            except httpx.HTTPError:
                pass

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def _parse(data: dict[str, Any], chat: bool) -> LLMResult:
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    calls: tuple[LLMToolCall, ...] = ()
    if chat:
        message = choice["message"]
        text = message.get("content") or ""
        calls = tuple(
            LLMToolCall(
                c["function"]["name"], json.loads(c["function"].get("arguments") or "{}"), c.get("id")
            )
            for c in message.get("tool_calls") or ()
        )
    else:
        text = choice["text"]
    return LLMResult(
        text=text,
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
        ),
        finish_reason=choice.get("finish_reason"),
        tool_calls=calls,
    )
