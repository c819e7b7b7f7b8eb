"""The LLM backend protocol the executor calls, its request and result, and parsing typed outputs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pydantic
from pydantic import TypeAdapter

from dag.compiler import LLMHints
from runtime.executor.errors import LLMOutputError


@dataclass(frozen=True)
class LLMRequest:
    """One LLM call of a program: chat ``messages`` (role/content dicts) or a raw ``prompt``, rendered.

    ``tools`` are the offered tools as OpenAI function specs; ``output_schema`` the JSON schema the text
    must parse into; ``hints`` what the compiler knows (next tool, remaining turns, ...).
    """

    program_id: str
    node_id: str
    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    tools: tuple[dict[str, Any], ...] = ()
    output_schema: dict[str, Any] | None = None
    hints: LLMHints = field(default_factory=LLMHints)
    attempt: int = 1

    @property
    def request_id(self) -> str:
        return f"{self.program_id}/{self.node_id}#{self.attempt}"


@dataclass(frozen=True)
class LLMToolCall:
    """A tool call the model asked for (OpenAI-compatible backends), with its arguments decoded."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class LLMResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: tuple[LLMToolCall, ...] = ()


@runtime_checkable
class LLMBackend(Protocol):
    """Serves the LLM calls of programs.

    ``complete`` returns the finished call or raises ``LLMBackendError``; cancelling it abandons the call (the
    backend aborts it where it can). ``end_program`` tells the backend a program is over (finished, failed or
    cancelled) so it releases what it keeps for it (the local engine's KV pins); it must be safe to call
    for a program it never saw. ``close`` releases the backend.
    """

    name: str

    async def complete(self, request: LLMRequest) -> LLMResult: ...

    async def end_program(self, program_id: str) -> None: ...

    async def close(self) -> None: ...


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_output(node: str, result: LLMResult, adapter: TypeAdapter | None) -> Any:
    """A node's value: the text, or with an ``output`` schema the text parsed as JSON (a ```json fence
    around it is allowed) into the schema's type; ``LLMOutputError`` when it does not parse or fit. A reply
    made only of tool calls gives ``[{"tool": name, "args": {...}}, ...]``."""
    if result.tool_calls and not result.text.strip():
        return [{"tool": c.name, "args": c.arguments} for c in result.tool_calls]
    if adapter is None:
        return result.text
    text = result.text
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise LLMOutputError(
            node, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", text
        ) from None
    try:
        return adapter.validate_python(data)
    except pydantic.ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise LLMOutputError(node, f"{loc + ': ' if loc else ''}{err['msg']}", text) from None
