"""What running one node means: a tool call with its timeout and retry policy, or an LLM call whose text
becomes the node's (typed) value. Each emits its ``tool_call`` / ``llm_turn`` trace events."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from tether.dag.compiler import CompiledProgram, LLMHints
from tether.dag.ir import LLMCall, ToolCall
from tether.hints import OutcomeReader, TurnOutcome
from tether.runtime.executor.errors import LLMBackendError, LLMOutputError, LLMTimeoutError
from tether.runtime.executor.llm import LLMBackend, LLMDelta, LLMRequest, LLMResult, parse_output, stream_llm
from tether.runtime.executor.retry import failure_status, with_retries
from tether.runtime.tracing import TraceEvent, TraceSink
from tether.tools.errors import ToolArgumentError, ToolError, UnknownToolError
from tether.tools.runner import ToolRunner

NEVER_RETRIED = (ToolArgumentError, UnknownToolError)
RETRIED_LLM_ERRORS = (LLMTimeoutError, LLMBackendError, LLMOutputError)
"""The LLM-call failures a ``RetryPolicy`` may retry; anything else (a bug, a callback's error) fails at once."""

DeltaHook = Callable[[LLMDelta], Awaitable[None] | None]
"""Called with each ``LLMDelta`` of a streamed LLM call (see ``Steps.llm_call``)."""


class Steps:
    """Runs the nodes of one program (``program_id``) against the executor's tool runner and LLM backend."""

    def __init__(
        self,
        program_id: str,
        compiled: CompiledProgram,
        tools: ToolRunner,
        llm: LLMBackend | None,
        trace: TraceSink | None,
        tool_specs: Callable[[str], dict[str, Any]],
    ) -> None:
        self.program_id = program_id
        self.compiled = compiled
        self.tools = tools
        self.llm = llm
        self.trace = trace
        self.tool_specs = tool_specs
        self.llm_results: dict[str, LLMResult] = {}  # per finished LLM node: its result, timed
        self.outcomes: dict[str, OutcomeReader] = {}  # per LLM node: how its reply says what follows

    def emit(self, kind: str, node: str | None, attrs: dict[str, Any], start: float | None = None) -> None:
        """One trace event now; ``start``: when its span began (``time.time()``), ``None`` for an instant."""
        if self.trace is not None:
            self.trace.emit(TraceEvent(kind, self.program_id, time.time(), node, attrs, start))  # type: ignore[arg-type]

    # -- tools ----------------------------------------------------------------------------------------------
    async def tool(self, node: ToolCall, args: dict[str, Any]) -> Any:
        """Call the tool; retry per ``node.retry``; ``NodeFailedError`` (with the attempts made) at the end."""
        return await with_retries(
            node.retry,
            lambda attempt: self._tool_attempt(node, args, attempt),
            program_id=self.program_id,
            node_id=node.id,
            retried=(ToolError,),
            never=NEVER_RETRIED,
        )

    async def _tool_attempt(self, node: ToolCall, args: dict[str, Any], attempt: int) -> Any:
        call_id = f"{self.program_id}/{node.id}#{attempt}"
        start = time.time()
        try:
            value = await self.tools.call(node.tool, args, call_id=call_id, timeout=node.timeout)
        except ToolError as exc:
            self._tool_event(node, call_id, attempt, failure_status(exc), start, exc)
            raise
        self._tool_event(node, call_id, attempt, "ok", start, None)
        return value

    def _tool_event(
        self, node: ToolCall, call_id: str, attempt: int, status: str, start: float, exc: BaseException | None
    ) -> None:
        worker_of = getattr(self.tools, "worker_of", None)  # a remote runner names the worker that ran it
        worker = worker_of(call_id) if worker_of is not None else "local"
        if self.trace is None:
            return
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": node.tool,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.conversation.id": self.program_id,
            "tool": node.tool,
            "call_id": call_id,
            "attempt": attempt,
            "status": status,
            "worker": worker,
            "duration_s": time.time() - start,
        }
        if exc is not None:
            attrs["error"] = f"{type(exc).__name__}: {exc}"
        self.emit("tool_call", node.id, attrs, start)

    # -- LLM calls ------------------------------------------------------------------------------------------
    async def llm_call(
        self,
        node: LLMCall,
        messages: tuple[dict[str, Any], ...] | None,
        prompt: str | None,
        on_delta: DeltaHook | None = None,
    ) -> Any:
        """Call the LLM and parse the reply into the node's value; retry per ``node.retry`` (a timeout is
        ``"timeout"``; an ``LLMBackendError`` or an ``LLMOutputError`` is ``"error"``); ``NodeFailedError``
        (with the attempts made) at the end. With ``on_delta`` the call is streamed and each ``LLMDelta``
        is passed to it (awaited when it returns an awaitable) as it arrives; an error it raises fails the
        node without a retry. The hints are read now, at dispatch."""
        assert self.llm is not None
        hints = self.compiled.hints.get(node.id, LLMHints())
        tools = tuple(self.tool_specs(t) for t in node.tools)
        outcome = self.turn_outcome(node.id)

        def request(attempt: int) -> LLMRequest:
            return LLMRequest(
                program_id=self.program_id,
                node_id=node.id,
                messages=messages,
                prompt=prompt,
                max_tokens=node.max_tokens,
                temperature=node.temperature,
                tools=tools,
                output_schema=node.output,
                hints=hints,
                attempt=attempt,
                tool_choice=node.tool_choice,
                grammar=node.grammar,
                outcome=outcome,
            )

        return await with_retries(
            node.retry,
            lambda attempt: self._llm_attempt(node, request(attempt), on_delta),
            program_id=self.program_id,
            node_id=node.id,
            retried=RETRIED_LLM_ERRORS,
        )

    def turn_outcome(self, node_id: str) -> OutcomeReader:
        """What the engine learns when the call's turn ends: what the node's own reader (``add_node(...,
        outcome=...)``) reads in the reply, else the node's hints as they are then, so a tool added after
        the call since it was dispatched (a streamed plan's task, an agent's next tool) is its next tool."""
        reader = self.outcomes.get(node_id)

        def read(text: str) -> TurnOutcome:
            said = reader(text) if reader is not None else None
            if said is not None:
                return said
            return TurnOutcome.from_hints(self.compiled.hints.get(node_id, LLMHints()))

        return read

    async def _llm_attempt(self, node: LLMCall, request: LLMRequest, on_delta: DeltaHook | None) -> Any:
        start = time.time()
        result: LLMResult | None = None
        try:
            result = await self._timed(node, request, on_delta)
            value = parse_output(node.id, result, self.compiled.output_types.get(node.id))
        except RETRIED_LLM_ERRORS as exc:
            self._llm_event(node, request, result, start, failure_status(exc), exc)
            raise
        self._llm_event(node, request, result, start, "ok", None)
        self.llm_results[node.id] = result.timed(time.time() - start)
        return value

    async def _timed(self, node: LLMCall, request: LLMRequest, on_delta: DeltaHook | None) -> LLMResult:
        assert self.llm is not None
        call = self.llm.complete(request) if on_delta is None else self._streamed(request, on_delta)
        if node.timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, node.timeout)
        except asyncio.TimeoutError:
            raise LLMTimeoutError(node.id, node.timeout) from None

    async def _streamed(self, request: LLMRequest, on_delta: DeltaHook) -> LLMResult:
        assert self.llm is not None
        result: LLMResult | None = None
        async with aclosing(stream_llm(self.llm, request)) as deltas:
            async for delta in deltas:
                pending = on_delta(delta)
                if inspect.isawaitable(pending):
                    await pending
                result = delta.result
        assert result is not None  # stream_llm ends with the result or raises
        return result

    def _llm_event(
        self,
        node: LLMCall,
        request: LLMRequest,
        result: LLMResult | None,
        start: float,
        status: str,
        exc: BaseException | None,
    ) -> None:
        if self.trace is None:
            return
        hints = request.hints
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": self.program_id,
            "backend": self.llm.name if self.llm is not None else None,
            "request_id": request.request_id,
            "attempt": request.attempt,
            "status": status,
            "duration_s": time.time() - start,
            "turn": hints.turn,
            "next_tool": hints.next_tool,
            "remaining_turns": hints.remaining_turns,
            "last_turn": hints.last_turn,
            "prefix_group": hints.prefix_group,
            "gen_ai.request.max_tokens": request.max_tokens,
            "gen_ai.request.temperature": request.temperature,
        }
        if result is not None:
            attrs["finish_reason"] = result.finish_reason
            attrs["gen_ai.usage.input_tokens"] = result.prompt_tokens
            attrs["gen_ai.usage.output_tokens"] = result.completion_tokens
            attrs["gen_ai.usage.cache_read.input_tokens"] = result.cached_tokens
            attrs["gen_ai.output.text"] = _cut(result.text)
            if result.tool_calls:
                attrs["tool_calls"] = [c.to_openai() for c in result.tool_calls]
        prompt = request.prompt if request.messages is None else json.dumps(request.messages, default=str)
        attrs["gen_ai.input.messages"] = _cut(prompt or "")
        if exc is not None:
            attrs["error"] = f"{type(exc).__name__}: {exc}"
        self.emit("llm_turn", node.id, attrs, start)


TEXT_LIMIT = 4000  # characters of prompt and output text kept in a trace event


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + f"... [{len(text) - TEXT_LIMIT} more]"
