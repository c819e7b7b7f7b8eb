"""What running one node means: a tool call with its timeout and retry policy, or an LLM call whose text
becomes the node's (typed) value. Each emits its ``tool_call`` / ``llm_turn`` trace events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from dag.compiler import CompiledProgram, LLMHints
from dag.ir import LLMCall, ToolCall
from runtime.executor.errors import LLMTimeoutError, NodeFailedError
from runtime.executor.llm import LLMBackend, LLMRequest, LLMResult, parse_output
from runtime.tracing import TraceEvent, TraceSink
from tools.errors import ToolArgumentError, ToolError, ToolTimeoutError, UnknownToolError
from tools.runner import ToolRunner

NEVER_RETRIED = (ToolArgumentError, UnknownToolError)


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

    def emit(self, kind: str, node: str | None, attrs: dict[str, Any]) -> None:
        if self.trace is not None:
            self.trace.emit(TraceEvent(kind, self.program_id, time.time(), node, attrs))  # type: ignore[arg-type]

    # -- tools ----------------------------------------------------------------------------------------------
    async def tool(self, node: ToolCall, args: dict[str, Any]) -> Any:
        """Call the tool; retry per ``node.retry``; ``NodeFailedError`` (with the attempts made) at the end."""
        policy = node.retry
        for attempt in range(1, policy.attempts + 1):
            delay = policy.delay_before(attempt)
            if delay > 0:
                await asyncio.sleep(delay)
            call_id = f"{self.program_id}/{node.id}#{attempt}"
            start = time.perf_counter()
            try:
                value = await self.tools.call(node.tool, args, call_id=call_id, timeout=node.timeout)
            except ToolError as exc:
                status = "timeout" if isinstance(exc, ToolTimeoutError) else "error"
                self._tool_event(node, call_id, attempt, status, start, exc)
                if isinstance(exc, NEVER_RETRIED) or status not in policy.on or attempt == policy.attempts:
                    raise NodeFailedError(self.program_id, node.id, exc, attempt) from exc
                continue
            self._tool_event(node, call_id, attempt, "ok", start, None)
            return value
        raise AssertionError("unreachable: RetryPolicy.attempts >= 1")

    def _tool_event(
        self, node: ToolCall, call_id: str, attempt: int, status: str, start: float, exc: BaseException | None
    ) -> None:
        if self.trace is None:
            return
        attrs: dict[str, Any] = {
            "tool": node.tool,
            "call_id": call_id,
            "attempt": attempt,
            "status": status,
            "duration_s": time.perf_counter() - start,
        }
        if exc is not None:
            attrs["error"] = f"{type(exc).__name__}: {exc}"
        self.emit("tool_call", node.id, attrs)

    # -- LLM calls ------------------------------------------------------------------------------------------
    async def llm_call(
        self, node: LLMCall, messages: tuple[dict[str, str], ...] | None, prompt: str | None
    ) -> Any:
        assert self.llm is not None
        hints = self.compiled.hints.get(node.id, LLMHints())
        request = LLMRequest(
            program_id=self.program_id,
            node_id=node.id,
            messages=messages,
            prompt=prompt,
            max_tokens=node.max_tokens,
            temperature=node.temperature,
            tools=tuple(self.tool_specs(t) for t in node.tools),
            output_schema=node.output,
            hints=hints,
        )
        start = time.perf_counter()
        if node.timeout is None:
            result = await self.llm.complete(request)
        else:
            try:
                result = await asyncio.wait_for(self.llm.complete(request), node.timeout)
            except asyncio.TimeoutError:
                raise LLMTimeoutError(node.id, node.timeout) from None
        self._llm_event(node, request, result, start)
        return parse_output(node.id, result, self.compiled.output_types.get(node.id))

    def _llm_event(self, node: LLMCall, request: LLMRequest, result: LLMResult, start: float) -> None:
        if self.trace is None:
            return
        hints = request.hints
        self.emit(
            "llm_turn",
            node.id,
            {
                "backend": self.llm.name if self.llm is not None else None,
                "request_id": request.request_id,
                "duration_s": time.perf_counter() - start,
                "turn": hints.turn,
                "next_tool": hints.next_tool,
                "remaining_turns": hints.remaining_turns,
                "last_turn": hints.last_turn,
                "prefix_group": hints.prefix_group,
                "finish_reason": result.finish_reason,
                "gen_ai.request.max_tokens": request.max_tokens,
                "gen_ai.request.temperature": request.temperature,
                "gen_ai.usage.input_tokens": result.prompt_tokens,
                "gen_ai.usage.output_tokens": result.completion_tokens,
                "cached_tokens": result.cached_tokens,
            },
        )
