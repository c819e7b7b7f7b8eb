"""``AgentRuntime``: what an agent front-end runs on — one ``Executor`` with a tool runner, an LLM backend
(the local engine on ``model`` or a given ``backend``) and a trace sink, all from one ``Deployment``
(``tether.runtime.deployment``). Shared by decorator agents, the planner and ReAct, so every front-end's calls
go through the same executor and reach the scheduler with their program's hints.

    async with AgentRuntime.create(tools=[search, calculator], model="smollm2") as rt:
        run = rt.start_program("planner")        # a held, growing program (seal it when done)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tether.dag.compiler import compile_program
from tether.dag.ir import Program
from tether.runtime.deployment import Deployment
from tether.runtime.executor import Executor, LLMBackend, ProgramRun
from tether.runtime.tracing import TraceSink
from tether.tools.local import LocalToolRunner
from tether.tools.registry import ToolRegistry
from tether.tools.tool import Tool


class AgentRuntime:
    """Owns the executor and its ``deployment``; ``close()`` closes the deployment: the backend only if
    ``create`` made it, the trace writer only if ``create`` opened it, the tool statistics saved, the recorded
    run (if any) ended. ``registry`` holds every tool the agents may call. The compiler and the tool runner
    use the deployment's tool-duration statistics (``tool_stats``), as a local engine does."""

    def __init__(self, registry: ToolRegistry, deployment: Deployment) -> None:
        self.registry = registry
        self.deployment = deployment
        self.tool_stats = deployment.stats
        self.backend: LLMBackend | None = deployment.backend
        self.trace: TraceSink | None = deployment.trace
        self.trace_path: Path | None = deployment.trace_path
        self.recorder = deployment.recorder  # the run this runtime records (create() without a trace)
        self.executor = Executor(LocalToolRunner(registry, self.tool_stats), self.backend, trace=self.trace)

    @classmethod
    async def create(
        cls,
        tools: Iterable[Tool] | ToolRegistry = (),
        *,
        model: str | None = "smollm2",
        backend: LLMBackend | None = None,
        trace: TraceSink | Path | str | None = None,
        trace_dir: Path | str | None = None,
        **engine_kwargs: Any,
    ) -> AgentRuntime:
        """``backend`` if given, else the local engine on ``model`` (``EngineConfig`` keyword arguments in
        ``engine_kwargs``; ``model=None``: no LLM). ``trace``: a sink, a JSONL path, or ``None`` for a new
        recorded run (kind ``agents``) under ``trace_dir`` (default ``trace_root()``: docs/tracing.md). The
        local engine's own events go to the same trace. The compiler, the tool runner and a local engine share
        the deployment's tool-duration statistics (``tether.tools.store``), saved back by ``close()``."""
        registry = tools if isinstance(tools, ToolRegistry) else _registry(tools)
        deployment = Deployment()
        if backend is not None:
            deployment.use_backend(backend)
        elif model is not None:
            from tether.runtime.engine.config import EngineConfig

            config = EngineConfig(model=model, **engine_kwargs)  # the local runner records the tool calls
            await deployment.start_local_engine(config)
        try:
            if trace is None:
                await deployment.record("agents", "agents", trace_dir=trace_dir, meta={"model": model})
            else:
                await deployment.use_trace(trace)
        except BaseException:
            await deployment.close()
            raise
        return cls(registry, deployment)

    def start_program(self, name: str, *, program_id: str | None = None) -> ProgramRun:
        """An empty, held program run that grows with ``add_node`` until ``seal()``; each finished LLM call's
        tokens and time are ``run.llm_result(node_id).usage``."""
        compiled = compile_program(Program(name, may_grow=True), self.registry, stats=self.tool_stats)
        pid = program_id or f"{name}-{uuid.uuid4().hex[:8]}"
        return self.executor.start(compiled, program_id=pid, hold=True)

    async def close(self) -> None:
        await self.deployment.close()

    async def __aenter__(self) -> AgentRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _registry(tools: Iterable[Tool]) -> ToolRegistry:
    registry = ToolRegistry()
    for t in tools:
        registry.register(t)
    return registry
