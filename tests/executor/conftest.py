"""Executor test fixtures: a registry of real tools, and a scripted LLM backend (answers from a script so
the executor's handling of LLM calls can be checked exactly; the real engine has its own end-to-end test)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable

import pytest

from tests.executor import executor_tools
from tether.dag import CompiledProgram, compile_program, parse_workflow
from tether.runtime.executor.llm import LLMRequest, LLMResult, Usage
from tether.tools import ToolRegistry

REGISTRY = ToolRegistry()
REGISTRY.load("tests.executor.executor_tools")


class ScriptedLLM:
    """An ``LLMBackend`` whose answer to each node comes from ``script[node_id]`` (a string, or a function
    of the request); it records every request and every ``end_program``."""

    name = "scripted"

    def __init__(self, script: dict[str, str | Callable[[LLMRequest], str]], delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.requests: list[LLMRequest] = []
        self.ended: list[str] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.script[request.node_id]
        text = answer(request) if callable(answer) else answer
        usage = Usage(prompt_tokens=7, completion_tokens=len(text.split()))
        return LLMResult(text=text, usage=usage, finish_reason="stop")

    async def end_program(self, program_id: str) -> None:
        self.ended.append(program_id)

    async def close(self) -> None:
        pass


def compile_yaml(text: str) -> CompiledProgram:
    return compile_program(parse_workflow(textwrap.dedent(text), path="wf.yaml"), REGISTRY)


@pytest.fixture(autouse=True)
def _reset_tool_records() -> None:
    executor_tools.CALLS.clear()
    executor_tools.RECEIVED.clear()
