"""Reading tool calls back out of generated text: ``parse_tool_calls(text) -> ParsedChat``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.runtime.engine.chat.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    Tool,
    dumps_json,
    loads_json,
    normalize_tools,
)
from tether.runtime.engine.errors import EngineError


class ToolCallParseError(EngineError, ValueError):
    """A ``<tool_call>`` block that is not a call: ``block_index`` (0-based, in text order) and ``block`` (its
    text between the tags) say which, ``reason`` why. Raised rather than dropping the block silently; a caller
    that prefers plain text (an OpenAI-style server answering with the text as content) catches it."""

    def __init__(self, block_index: int, block: str, reason: str) -> None:
        super().__init__(f"tool call block {block_index}: {reason}: {block!r}")
        self.block_index = block_index
        self.block = block
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[int, str, str]]:
        return (type(self), (self.block_index, self.block, self.reason))


@dataclass(frozen=True)
class ToolCall:
    """One call, as OpenAI has it: ``arguments`` is the arguments object as JSON text (``json.dumps`` with
    its default separators and ``ensure_ascii=False``: the form the chat format renders)."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """``{"id", "type": "function", "function": {"name", "arguments"}}``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class ParsedChat:
    """Generated text split into ``content`` (the text outside the call blocks, stripped; ``None`` when
    empty) and ``tool_calls`` (in text order)."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation (``tool_calls`` only when there are any)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message


def new_tool_call_id() -> str:
    """``call_`` and 24 random hex digits, like OpenAI's ids."""
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_tool_calls(text: str, tools: Sequence[Mapping[str, Any] | Tool] | None = None) -> ParsedChat:
    """Split ``text`` into content and ``<tool_call>`` blocks.

    A block is ``<tool_call>`` + a JSON object ``{"name": <str>, "arguments": <object>}`` (no other keys) +
    ``</tool_call>``; whitespace around the JSON is ignored, and the last block may lack its ``</tool_call>``
    (output cut at EOS or at a ``</tool_call>`` stop string). Every block must parse: a block that is not valid
    JSON, not such an object, not closed before the next ``<tool_call>``, or (when ``tools`` is given) names no
    tool there raises ``ToolCallParseError``. ``arguments`` is re-serialised canonically (see ``ToolCall``).
    Each call gets a fresh id (``new_tool_call_id``). The content is the text outside the blocks, joined and
    stripped; ``None`` when empty.
    """
    names = None if tools is None else {t.name for t in normalize_tools(tools)}
    pieces: list[str] = []
    calls: list[ToolCall] = []
    pos = 0
    while (start := text.find(TOOL_CALL_OPEN, pos)) >= 0:
        pieces.append(text[pos:start])
        body_start = start + len(TOOL_CALL_OPEN)
        end = text.find(TOOL_CALL_CLOSE, body_start)
        following = text.find(TOOL_CALL_OPEN, body_start)
        if following >= 0 and (end < 0 or following < end):
            raise ToolCallParseError(
                len(calls),
                text[body_start:following],
                f"not closed by {TOOL_CALL_CLOSE} before the next block",
            )
        if end < 0:  # the output ended inside the last block
            body, pos = text[body_start:], len(text)
        else:
            body, pos = text[body_start:end], end + len(TOOL_CALL_CLOSE)
        calls.append(_parse_block(len(calls), body, names))
    pieces.append(text[pos:])
    content = "".join(pieces).strip()
    return ParsedChat(content=content or None, tool_calls=tuple(calls))


def _parse_block(index: int, body: str, names: set[str] | None) -> ToolCall:
    try:
        call = loads_json(body)
    except ValueError as exc:  # json.JSONDecodeError, or a number out of range
        raise ToolCallParseError(index, body, f"invalid JSON ({exc})") from None
    if not isinstance(call, dict) or set(call) != {"name", "arguments"}:
        got = sorted(call) if isinstance(call, dict) else type(call).__name__
        raise ToolCallParseError(
            index, body, f"expected an object with keys 'name' and 'arguments', got {got}"
        )
    name, arguments = call["name"], call["arguments"]
    if not isinstance(name, str) or not name:
        raise ToolCallParseError(index, body, "'name' must be a non-empty string")
    if not isinstance(arguments, dict):
        raise ToolCallParseError(
            index, body, f"'arguments' must be an object, got {type(arguments).__name__}"
        )
    if names is not None and name not in names:
        raise ToolCallParseError(index, body, f"no tool named {name!r} (tools: {', '.join(sorted(names))})")
    return ToolCall(id=new_tool_call_id(), name=name, arguments=dumps_json(arguments))
