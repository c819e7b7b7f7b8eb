"""Reading what an OpenAI-compatible server answers: a whole reply (``parse_reply``), a streamed one chunk by
chunk (``StreamedReply``), and the ``openai`` SDK's exceptions as the executor's typed errors
(``backend_error``). Replies are read as the JSON dicts the server sent (``BaseModel.to_dict()``), so a field a
server leaves out reads as its default and a field of the wrong shape raises ``MalformedReply`` naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import openai

from tether.runtime.executor.errors import (
    ExecutorError,
    LLMBackendError,
    LLMServerError,
    LLMTimeoutError,
)
from tether.runtime.executor.llm import LLMRequest, LLMResult, LLMToolCall, Usage

TRANSPORT_ERRORS = (openai.OpenAIError, httpx2.HTTPError, httpx.HTTPError)
"""What a call on the SDK raises: its own errors, and the HTTP client's while a stream is being read."""


class MalformedReply(ValueError):
    """A reply that is not the OpenAI shape; the message names the field (``choices[0].message.content``)."""


def parse_reply(data: dict[str, Any], chat: bool) -> LLMResult:
    """A whole ``/chat/completions`` (``chat``) or ``/completions`` reply as an ``LLMResult``."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply(f"choices is {choices!r}, not a list of choice objects")
    choice = choices[0]
    calls: tuple[LLMToolCall, ...] = ()
    if chat:
        message = _object(choice.get("message"), "choices[0].message")
        text = _text(message.get("content"), "choices[0].message.content")
        calls = tuple(
            _tool_call(c.get("function") or {}, c.get("id"), f"choices[0].message.tool_calls[{i}]")
            for i, c in enumerate(message.get("tool_calls") or ())
        )
    else:
        text = _text(choice.get("text"), "choices[0].text")
    return LLMResult(text, _usage(data.get("usage")), choice.get("finish_reason"), calls)


@dataclass
class StreamedReply:
    """The state of one streamed reply: ``feed(chunk)`` returns the text the chunk adds; tool-call pieces are
    gathered by their ``index``; ``result()`` is the finished ``LLMResult`` (``MalformedReply`` when no chunk
    gave a ``finish_reason``: the stream was cut)."""

    chat: bool
    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    chunks: int = 0

    def feed(self, chunk: dict[str, Any]) -> str:
        where = f"chunk {self.chunks}"
        self.chunks += 1
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        piece = ""
        for choice in chunk.get("choices") or ():
            if self.chat:
                delta = _object(choice.get("delta") or {}, f"{where}: choices[0].delta")
                piece += _text(delta.get("content"), f"{where}: choices[0].delta.content")
                for call in delta.get("tool_calls") or ():
                    self._call_piece(call, where)
            else:
                piece += _text(choice.get("text"), f"{where}: choices[0].text")
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.text.append(piece)
        return piece

    def _call_piece(self, call: dict[str, Any], where: str) -> None:
        index = call.get("index", len(self.calls))
        if not isinstance(index, int):
            raise MalformedReply(f"{where}: choices[0].delta.tool_calls[].index is {index!r}")
        slot = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = call.get("function") or {}
        slot["id"] = call.get("id") or slot["id"]
        slot["name"] += function.get("name") or ""
        slot["arguments"] += function.get("arguments") or ""

    def result(self) -> LLMResult:
        if self.finish_reason is None:
            raise MalformedReply(f"the stream ended after {self.chunks} chunks without a finish_reason")
        calls = tuple(
            _tool_call(c, c["id"] or None, f"the stream's tool_calls[{i}]")
            for i, c in sorted(self.calls.items())
        )
        return LLMResult("".join(self.text), self.usage, self.finish_reason, calls)


def backend_error(exc: BaseException, request: LLMRequest, url: str, timeout: float) -> ExecutorError:
    """``exc`` (one of ``TRANSPORT_ERRORS`` or ``MalformedReply``) as the executor's error for ``request``'s
    node: an HTTP error status is an ``LLMServerError`` (with the ``param`` and ``code`` of the server's error
    object), a timeout an ``LLMTimeoutError``, anything else an ``LLMBackendError`` naming the URL."""
    node, rid = request.node_id, request.request_id
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException | httpx.TimeoutException):
        return LLMTimeoutError(node, timeout)
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        sent = exc.response.request.headers.get("x-stainless-retry-count") or "0"
        return LLMServerError(
            node,
            exc.status_code,
            str(message) if message is not None else _body_text(exc.response),
            url=url,
            request_id=rid,
            param=exc.param,
            code=exc.code,
            retries=int(sent) if sent.isdigit() else 0,
        )
    if isinstance(exc, MalformedReply | openai.APIResponseValidationError):
        return LLMBackendError(node, f"malformed response from {url} (request {rid}): {exc}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc  # the HTTP client's error (ConnectError, RemoteProtocolError, ...)
        return LLMBackendError(node, f"{type(cause).__name__}: {cause} ({url}, request {rid})")
    if isinstance(exc, openai.APIError):  # an error event in a stream
        return LLMBackendError(node, f"error in the stream from {url} (request {rid}): {exc.message}")
    return LLMBackendError(node, f"{type(exc).__name__}: {exc} ({url}, request {rid})")


def _body_text(response: httpx2.Response) -> str:
    try:
        return response.text[:300]
    except httpx2.ResponseNotRead:
        return "(body not read)"


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReply(f"{where} is {value!r}, not an object")
    return value


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedReply(f"{where} is {value!r}, not a string")
    return value


def _tool_call(function: dict[str, Any], call_id: str | None, where: str) -> LLMToolCall:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedReply(f"{where}.function.name is {name!r}, not a tool name")
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise MalformedReply(f"{where}.function.arguments is not JSON ({exc.msg}): {raw[:120]!r}") from None
    if not isinstance(arguments, dict):
        raise MalformedReply(f"{where}.function.arguments is {arguments!r}, not a JSON object")
    return LLMToolCall(name, arguments, call_id)


def _usage(usage: Any) -> Usage:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )
