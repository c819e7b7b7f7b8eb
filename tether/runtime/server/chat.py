"""``POST /v1/chat/completions``.

The conversation (assistant ``tool_calls``, ``role: "tool"`` results, ``developer`` read as ``system``) and
the ``tools`` are rendered by the shared chat format (``tether.runtime.engine.chat`` through the tokenizer's template).
Unless ``tool_choice`` is ``"none"``, the reply's ``<tool_call>`` blocks become ``message.tool_calls`` with
``finish_reason: "tool_calls"``; ``"none"`` still renders the tools (the prompt prefix stays the program's, as
vLLM does) but reads no call from the reply. ``"required"`` or a named function, ``response_format`` and vLLM's
``structured_outputs`` constrain the reply with a grammar, so forced arguments always validate.
``parallel_tool_calls: false`` stops the reply at the end of its first call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from tether.runtime.engine.async_engine import StreamDelta
from tether.runtime.engine.chat import (
    TOOL_CALL_CLOSE,
    ParsedChat,
    Tool,
    ToolCallParseError,
    normalize_tools,
    parse_tool_calls,
)
from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.server.errors import bad_request
from tether.runtime.server.protocol import ChatCompletionRequest
from tether.runtime.server.sampling import chat_constraint, check_supported, max_tokens_for, sampling_params
from tether.runtime.server.serving import ServerState, usage_dict
from tether.runtime.server.sessions import SESSION_HEADER
from tether.runtime.server.streaming import ContentSplitter

ROLES = ("system", "developer", "user", "assistant", "tool")


def _messages(body: ChatCompletionRequest) -> list[dict[str, Any]]:
    out = []
    for i, message in enumerate(body.messages):
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(
                f"role must be one of {', '.join(ROLES)}, got {role!r}", param=f"messages[{i}].role"
            )
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise bad_request(  # OpenAI's answer too: only an assistant message with tool_calls may omit it
                f"'messages[{i}].content' is required for a {role} message",
                param=f"messages[{i}].content",
                code="missing_field",
            )
        out.append({**message, "role": "system"} if role == "developer" else message)
    return out


def _tools(body: ChatCompletionRequest) -> tuple[Tool, ...]:
    try:
        return normalize_tools(body.tools)
    except InvalidRequestError as exc:
        raise bad_request(exc.reason, param=exc.field, code="invalid_value") from None


async def chat_completion(state: ServerState, body: ChatCompletionRequest, headers: dict[str, str]):
    """The response document, or an async iterator of chunk documents when ``stream`` is set."""
    check_supported(body)
    state.check_model(body.model)
    tools = _tools(body)
    reads_calls = bool(tools) and body.tool_choice != "none"
    messages = _messages(body)
    if state.tokenizer is None:
        raise bad_request("this model has no tokenizer or chat template", param="messages")
    try:
        prompt = state.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tools=tools or None
        )
    except (InvalidRequestError, ValueError) as exc:
        field = exc.field if isinstance(exc, InvalidRequestError) else "messages"
        reason = exc.reason if isinstance(exc, InvalidRequestError) else str(exc)
        raise bad_request(reason, param=field, code="invalid_value") from None
    ids = state.encode(prompt, "messages")
    max_tokens = max_tokens_for(
        body.max_completion_tokens or body.max_tokens,
        len(ids),
        state.max_model_len,
        "messages",
        state.config.max_tokens_default,
    )
    constraint = chat_constraint(body, tools)
    one_call = reads_calls and body.parallel_tool_calls is False
    params = sampling_params(body, max_tokens, constraint, (TOOL_CALL_CLOSE,) if one_call else ())
    hints = state.programs.hints(body, headers.get(SESSION_HEADER))
    rid = state.new_request_id("chatcmpl")
    if reads_calls:
        state.outcomes.expect_tool_calls(rid, tools)  # before it runs: the engine reads it when the turn ends
    deltas = await state.generate(rid, ids, params, hints, stream=body.stream)
    head = {"id": rid, "created": int(time.time()), "model": body.model}
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return _chunks(head, deltas, tools if reads_calls else None, include_usage)
    last: StreamDelta | None = None
    async for last in deltas:  # noqa: B007
        pass
    assert last is not None
    message, reason = _message(last, tools if reads_calls else None)
    return {
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
        "usage": usage_dict(last),
    }


def _parse(text: str, tools: tuple[Tool, ...] | None) -> ParsedChat:
    """The reply's calls; a reply whose blocks do not parse is all content (the client sees what came out)."""
    if tools is None:
        return ParsedChat(content=text)
    try:
        return parse_tool_calls(text, tools)
    except ToolCallParseError:
        return ParsedChat(content=text)


def _message(last: StreamDelta, tools: tuple[Tool, ...] | None) -> tuple[dict[str, Any], str]:
    comp = last.output.outputs[0]
    parsed = _parse(comp.text, tools)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": parsed.content if parsed.tool_calls else comp.text,
    }
    if parsed.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in parsed.tool_calls]
        return message, "tool_calls"
    return message, comp.finish_reason or "stop"


async def _chunks(
    head: dict[str, Any],
    deltas: AsyncIterator[StreamDelta],
    tools: tuple[Tool, ...] | None,
    include_usage: bool,
) -> AsyncIterator[dict[str, Any]]:
    base = {**head, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
            **extra,
        }

    splitter = ContentSplitter()
    yield chunk({"role": "assistant", "content": ""})
    last: StreamDelta | None = None
    try:
        async for last in deltas:
            content = splitter.push(last.text) if tools is not None else last.text
            if content:
                yield chunk({"content": content})
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    assert last is not None and last.finished
    comp = last.output.outputs[0]
    reason = comp.finish_reason or "stop"
    if tools is not None:
        parsed = _parse(comp.text, tools)
        if parsed.tool_calls:
            for i, call in enumerate(parsed.tool_calls):
                yield chunk({"tool_calls": [{"index": i, **call.to_openai()}]})
            reason = "tool_calls"
        elif splitter.sent < len(comp.text):  # held back: a tag's start, or blocks that did not parse
            yield chunk({"content": comp.text[splitter.sent :]})
    yield chunk({}, reason)
    if include_usage:
        yield {**base, "choices": [], "usage": usage_dict(last)}
