"""The executor: runs compiled programs, many at once, on one event loop.

    executor = Executor(LocalToolRunner(registry), LocalEngineBackend(engine), trace=JsonlTraceWriter(path))
    result = await executor.run(compiled, {"topic": "KV caches"})        # or .start(...) -> ProgramRun

Every node starts the moment its inputs are ready (see ``tether.runtime.executor.run``); tools go through a
``ToolRunner`` (in process or remote workers), LLM calls through an ``LLMBackend`` with the compiler's hints.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tether.dag.compiler import CompiledProgram
from tether.dag.ir import LLMCall
from tether.runtime.executor.errors import ExecutorError, NoLLMBackendError
from tether.runtime.executor.llm import LLMBackend
from tether.runtime.executor.run import NodeHook, ProgramResult, ProgramRun
from tether.runtime.executor.steps import DeltaHook
from tether.runtime.tracing import TraceSink
from tether.tools.runner import ToolRunner


class Executor:
    """Runs programs. Rules: a program's nodes start as soon as their dependencies complete, concurrently
    with every other ready node of every program; a failing node fails its program (``NodeFailedError``
    names the node and the cause), cancels its running nodes and starts nothing more; the LLM backend's
    ``end_program`` is called when a program with LLM calls ends (however it ends), releasing its KV pins.
    Program ids must be unique among the programs running at once."""

    def __init__(self, tools: ToolRunner, llm: LLMBackend | None = None, *, trace: TraceSink | None = None):
        self.tools = tools
        self.llm = llm
        self.trace = trace
        self.runs: dict[str, ProgramRun] = {}
        self._counter = itertools.count()
        self._specs: dict[tuple[int, str], dict[str, Any]] = {}

    def start(
        self,
        compiled: CompiledProgram,
        inputs: Mapping[str, Any] | None = None,
        *,
        program_id: str | None = None,
        on_node_done: NodeHook | None = None,
        hold: bool = False,
        on_delta: Mapping[str, DeltaHook] | None = None,
    ) -> ProgramRun:
        """Start a run (call from the event loop); ``InputError`` / ``NoLLMBackendError`` before anything runs.
        ``hold=True`` keeps the run open until ``run.seal()`` (the program needs ``may_grow=True``; it may
        start with no nodes); ``on_delta`` maps LLM-call node ids to streaming callbacks."""
        pid = program_id or f"{compiled.program.name}-{uuid.uuid4().hex[:8]}"
        if pid in self.runs:
            raise ExecutorError(f"a program with id {pid!r} is already running")
        if self.llm is None:
            for n, node in compiled.program.nodes.items():
                if isinstance(node, LLMCall):
                    raise NoLLMBackendError(compiled.program.name, n)
        run = ProgramRun(self, compiled, inputs or {}, pid, on_node_done, hold=hold, on_delta=on_delta)
        self.runs[pid] = run
        run.begin()
        return run

    async def run(
        self,
        compiled: CompiledProgram,
        inputs: Mapping[str, Any] | None = None,
        *,
        program_id: str | None = None,
        on_node_done: NodeHook | None = None,
    ) -> ProgramResult:
        """``start`` and ``wait``: the result, or ``NodeFailedError`` / ``ProgramCancelledError``."""
        return await self.start(compiled, inputs, program_id=program_id, on_node_done=on_node_done).wait()

    def cancel(self, program_id: str, reason: str = "cancelled") -> bool:
        run = self.runs.get(program_id)
        return run.cancel(reason) if run is not None else False

    def tool_spec(self, compiled: CompiledProgram) -> Callable[[str], dict[str, Any]]:
        """OpenAI function specs of the tools LLM calls are offered (cached per registry and tool)."""
        registry = compiled.registry

        def spec(name: str) -> dict[str, Any]:
            key = (id(registry), name)
            if key not in self._specs:
                function: dict[str, Any] = {"name": name}
                if registry is not None and name in registry:
                    t = registry.get(name)
                    function = {"name": name, "description": t.description, "parameters": t.input_schema()}
                self._specs[key] = {"type": "function", "function": function}
            return self._specs[key]

        return spec

    def forget(self, run: ProgramRun) -> None:
        """Called by a run when it has ended."""
        if self.runs.get(run.id) is run:
            del self.runs[run.id]
