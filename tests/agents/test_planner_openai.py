"""The planner on ``OpenAIBackend``: its plan streams over HTTP (SSE from a scripted server on loopback) and
each task is dispatched the moment its line arrives, before the plan's stream ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from tests.executor.script_server import Reply, ScriptServer, chat_chunk, usage_chunk
from tether.agents.planner import parse_plan
from tether.agents.planner.agent import Planner
from tether.runtime.executor import LLMDelta, LLMRequest
from tether.runtime.executor.backends.openai import OpenAIBackend
from tether.runtime.tracing import MemoryTraceSink
from tether.tools.tool import Tool

STARTS: list[tuple[str, float]] = []


async def number(x: int) -> int:
    """Return x."""
    STARTS.append(("number", time.perf_counter()))
    return x


async def add(a: int, b: int) -> int:
    """Add two integers."""
    STARTS.append(("add", time.perf_counter()))
    return a + b


TOOLS = [Tool(number), Tool(add)]
PLAN = "Thought: add\n1. number(x=3)\n2. number(x=4)\n3. add(a=$1, b=$2)\n4. join()\n<END_OF_PLAN>"
PAUSE = 0.1


class TimedBackend(OpenAIBackend):
    """Records when each streamed call's last delta (the one with the result) arrived, on ``clock``."""

    def __init__(self, *args, clock=time.perf_counter, **kwargs) -> None:  # noqa: ANN001
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.stream_ends: list[float] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        async for delta in super().stream(request):
            if delta.result is not None:
                self.stream_ends.append(self.clock())
            yield delta


def streamed(text: str, prompt_tokens: int) -> Reply:
    lines = [chat_chunk(line) for line in text.splitlines(keepends=True)]
    events = (*lines, chat_chunk(None, "stop"), usage_chunk(prompt_tokens, len(lines)))
    return Reply(events=events, pause=PAUSE)


async def test_tasks_are_dispatched_while_the_plan_streams_over_http() -> None:
    STARTS.clear()
    server = ScriptServer([streamed(PLAN, 120), streamed("Thought: 3 + 4\nAction: Finish(7)", 80)])
    backend = TimedBackend(server.url, "m")
    try:
        async with Planner(TOOLS, model=None, backend=backend, trace=MemoryTraceSink()) as planner:
            result = await asyncio.wait_for(planner.run("What is 3 + 4?"), 30)
    finally:
        await backend.close()
        server.close()
    assert result.answer == "7" and result.plans == [parse_plan(PLAN, TOOLS)]
    assert sorted((o.task, o.value, o.error) for o in result.observations) == [
        (1, 3, None),
        (2, 4, None),
        (3, 7, None),
    ]
    # "number" started while three more events (lines 3-4, <END_OF_PLAN>) were still to come
    assert [name for name, _ in STARTS] == ["number", "number", "add"]
    assert STARTS[0][1] < backend.stream_ends[0] - 2 * PAUSE
    assert [(c.role, c.prompt_tokens, c.completion_tokens) for c in result.llm_calls] == [
        ("planner", 120, 6),
        ("joiner", 80, 2),
    ]
    plan_call, join_call = server.seen
    assert plan_call.body["stream"] is True and "structured_outputs" not in plan_call.body  # unconstrained
    assert plan_call.body["session_id"] == join_call.body["session_id"] == result.trace_id
    assert plan_call.headers["x-request-id"] == f"{result.trace_id}/plan0#1"
