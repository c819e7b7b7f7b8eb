"""The LLM backend protocol the executor calls, its request and result, and parsing typed outputs."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import pydantic
from pydantic import TypeAdapter

from tether.dag.compiler import LLMHints
from tether.hints import OutcomeReader
from tether.runtime.executor.errors import LLMBackendError, LLMOutputError


@dataclass(frozen=True)
class LLMRequest:
    """One LLM call of a program: chat ``messages`` (OpenAI-shaped dicts: ``role``, ``content``, and
    ``tool_calls`` on assistant messages / ``tool_call_id`` on tool results) or a raw ``prompt``, rendered.

    ``tools`` are the offered tools as OpenAI function specs; ``output_schema`` the JSON schema the text
    must parse into; ``tool_choice`` OpenAI's (``None``: the backend's default); ``grammar`` an EBNF the
    reply must follow; ``hints`` what the compiler knows (next tool, remaining turns, ...); ``attempt``
    the 1-based try of this node (retries); ``outcome`` reads the finished reply's text into its
    ``TurnOutcome`` (the tool the program now waits for, whether it ends), for a backend whose engine learns
    it at turn end (the local engine; a server parses tool calls itself). Not part of equality.
    """

    program_id: str
    node_id: str
    messages: tuple[dict[str, Any], ...] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    tools: tuple[dict[str, Any], ...] = ()
    output_schema: dict[str, Any] | None = None
    hints: LLMHints = field(default_factory=LLMHints)
    attempt: int = 1
    tool_choice: str | dict[str, Any] | None = None
    grammar: str | None = None
    outcome: OutcomeReader | None = field(default=None, compare=False, repr=False)

    @property
    def request_id(self) -> str:
        return f"{self.program_id}/{self.node_id}#{self.attempt}"


@dataclass(frozen=True)
class LLMToolCall:
    """A tool call the model asked for, with its arguments decoded; ``id`` the call's id (the backend's or
    a fresh one) so the assistant message and the tool result can name it."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """``{"id", "type": "function", "function": {"name", "arguments": JSON text}}`` for an assistant
        message (``id`` is ``""`` when the backend gave none)."""
        arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {
            "id": self.id or "",
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass(frozen=True)
class Usage:
    """What one LLM call used: ``prompt_tokens`` (the whole prompt, cached ones included), ``completion_tokens``,
    ``cached_tokens`` (prompt tokens the server's prefix cache served) and ``seconds``. A backend fills the
    tokens and leaves ``seconds`` 0; the executor sets it, on the result it keeps for the node
    (``ProgramRun.llm_result``), to the successful attempt's wall time (request sent to reply parsed).
    ``a + b`` adds each field (``sum(usages, Usage())`` totals a run)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.seconds + other.seconds,
        )


@dataclass(frozen=True)
class LLMResult:
    """A finished LLM call: ``text`` (the reply without its parsed tool calls), ``usage``, ``finish_reason``
    (``"stop"``, ``"length"``, ...) and the ``tool_calls`` it asked for. ``prompt_tokens``,
    ``completion_tokens`` and ``cached_tokens`` read ``usage``."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    tool_calls: tuple[LLMToolCall, ...] = ()

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens

    @property
    def cached_tokens(self) -> int:
        return self.usage.cached_tokens

    def timed(self, seconds: float) -> LLMResult:
        """This result with ``usage.seconds`` set (the executor times each attempt)."""
        return replace(self, usage=replace(self.usage, seconds=seconds))


@dataclass(frozen=True)
class LLMDelta:
    """A piece of a streamed reply: ``text`` the raw text generated since the previous delta (tool-call
    blocks included); the last delta of an attempt carries ``result`` (whose ``text`` is the reply without
    its parsed tool calls). ``attempt`` is the request's attempt: a retry streams again from the start."""

    text: str
    result: LLMResult | None = None
    attempt: int = 1


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


@runtime_checkable
class StreamingLLMBackend(LLMBackend, Protocol):
    """A backend that can also stream a call: ``stream(request)`` yields ``LLMDelta``s, the last one with
    the ``LLMResult``; it raises what ``complete`` raises; closing the iterator early aborts the call."""

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]: ...


async def stream_llm(backend: LLMBackend, request: LLMRequest) -> AsyncIterator[LLMDelta]:
    """Stream ``request`` on ``backend``: its own ``stream`` when it has one, else one delta made from
    ``complete`` (the whole text, with the result). Every delta carries ``request.attempt``; the iterator
    ends after the delta with the result (``LLMBackendError`` if the backend's stream ended without one)."""
    if not isinstance(backend, StreamingLLMBackend):
        result = await backend.complete(request)
        yield LLMDelta(result.text, result, request.attempt)
        return
    async with aclosing(backend.stream(request)) as deltas:
        async for delta in deltas:
            if delta.attempt != request.attempt:
                delta = LLMDelta(delta.text, delta.result, request.attempt)
            yield delta
            if delta.result is not None:
                return
    raise LLMBackendError(request.node_id, f"{backend.name}: the stream ended without a result")


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
