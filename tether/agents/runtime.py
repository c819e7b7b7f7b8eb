"""``AgentRuntime``: what an agent front-end runs on — one ``Executor`` with a tool runner, an LLM backend
(the local engine on ``model`` or a given ``backend``) and a trace sink. Shared by decorator agents, the
planner and ReAct, so every front-end's calls go through the same executor and reach the scheduler with
their program's hints.

    async with AgentRuntime.create(tools=[search, calculator], model="smollm2") as rt:
        run = rt.start_program("planner")        # a held, growing program (seal it when done)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.dag.compiler import compile_program
from tether.dag.ir import Program
from tether.runtime.executor import Executor, LLMBackend, ProgramRun
from tether.runtime.tracing import RunRecorder, TraceEvent, TraceSink
from tether.tools.durations import ToolDurationStats
from tether.tools.local import LocalToolRunner
from tether.tools.registry import ToolRegistry
from tether.tools.store import deployment_stats, save_deployment_stats
from tether.tools.tool import Tool


@dataclass(frozen=True)
class LLMTurn:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    seconds: float


class UsageTap:
    """The runtime's trace sink: passes every event on to the real sink (if any) and keeps the ``llm_turn``
    events (tokens, cached tokens, duration) of the programs started with ``start_program`` until the agent
    takes them with ``AgentRuntime.llm_turn``."""

    def __init__(self, inner: TraceSink | None) -> None:
        self.inner = inner
        self.watched: set[str] = set()
        self.turns: dict[tuple[str, str], dict[str, Any]] = {}

    def emit(self, event: TraceEvent) -> None:
        if self.inner is not None:
            self.inner.emit(event)
        if event.kind == "llm_turn" and event.program_id in self.watched and event.node_id is not None:
            self.turns[(event.program_id, event.node_id)] = event.attrs

    def close(self) -> None:  # the runtime closes the inner sink it owns
        pass


class AgentRuntime:
    """Owns the executor; ``close()`` closes the backend only if ``create`` made it, and the trace writer only
    if ``create`` opened it. ``registry`` holds every tool the agents may call."""

    def __init__(
        self,
        registry: ToolRegistry,
        backend: LLMBackend | None,
        *,
        trace: TraceSink | None = None,
        trace_path: Path | None = None,
        owns_backend: bool = False,
        owns_trace: bool = False,
        recorder: RunRecorder | None = None,
        tool_stats: ToolDurationStats | None = None,
        saves_stats: bool = False,
    ) -> None:
        self.registry = registry
        self.tool_stats = tool_stats if tool_stats is not None else deployment_stats()  # runner, compiler
        self._saves_stats = saves_stats
        self.backend = backend
        self.trace = trace
        self.trace_path = trace_path
        self.usage = UsageTap(trace)
        self.executor = Executor(LocalToolRunner(registry, tool_stats), backend, trace=self.usage)
        self._owns_backend = owns_backend
        self._owns_trace = owns_trace
        self.recorder = recorder  # the run this runtime records (create() without a trace), ended by close()

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
        stats = deployment_stats()
        registry = tools if isinstance(tools, ToolRegistry) else _registry(tools)
        owns_backend = False
        if backend is None and model is not None:
            from tether.runtime.engine.config import EngineConfig
            from tether.runtime.executor.backends.local_engine import LocalEngineBackend

            config = EngineConfig(model=model, **engine_kwargs)  # the local runner records the tool calls
            backend = await LocalEngineBackend.create(config, tool_stats=stats, observe_tools=False)
            owns_backend = True
        recorder = None
        if trace is None:
            recorder = RunRecorder("agents", "agents", trace_dir=trace_dir, meta={"model": model})
            writer = recorder.trace()
            sink: TraceSink | None = writer
            path: Path | None = writer.path
            owns_trace = False
        else:
            sink, path, owns_trace = _trace(trace)
        if owns_backend and sink is not None:
            engine_sink = sink
            await backend.engine.call(lambda e: e.trace_to(engine_sink))  # type: ignore[union-attr]
        return cls(
            registry,
            backend,
            trace=sink,
            trace_path=path,
            owns_backend=owns_backend,
            owns_trace=owns_trace,
            recorder=recorder,
            tool_stats=stats,
            saves_stats=True,
        )

    def start_program(self, name: str, *, program_id: str | None = None) -> ProgramRun:
        """An empty, held program run that grows with ``add_node`` until ``seal()``."""
        compiled = compile_program(Program(name, may_grow=True), self.registry, stats=self.tool_stats)
        pid = program_id or f"{name}-{uuid.uuid4().hex[:8]}"
        self.usage.watched.add(pid)
        return self.executor.start(compiled, program_id=pid, hold=True)

    def llm_turn(self, program_id: str, node_id: str) -> LLMTurn:
        """Tokens and time of a finished LLM node of a program started here (its last attempt); zeros if the
        node emitted no ``llm_turn`` event. Each node's figures are handed out once."""
        attrs = self.usage.turns.pop((program_id, node_id), {})
        return LLMTurn(
            prompt_tokens=int(attrs.get("gen_ai.usage.input_tokens", 0)),
            completion_tokens=int(attrs.get("gen_ai.usage.output_tokens", 0)),
            cached_tokens=int(attrs.get("gen_ai.usage.cache_read.input_tokens", 0)),
            seconds=float(attrs.get("duration_s", 0.0)),
        )

    def end_program(self, program_id: str) -> None:
        """Stop keeping the program's ``llm_turn`` events (call once its run has ended)."""
        self.usage.watched.discard(program_id)
        for key in [k for k in self.usage.turns if k[0] == program_id]:
            del self.usage.turns[key]

    async def close(self) -> None:
        if self._owns_backend and self.backend is not None:
            await self.backend.close()
        if self._owns_trace and self.trace is not None:
            self.trace.close()
        if self._saves_stats:
            save_deployment_stats()
        if self.recorder is not None:
            self.recorder.end("ok")

    async def __aenter__(self) -> AgentRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _registry(tools: Iterable[Tool]) -> ToolRegistry:
    registry = ToolRegistry()
    for t in tools:
        registry.register(t)
    return registry


def _trace(trace: TraceSink | Path | str) -> tuple[TraceSink | None, Path | None, bool]:
    from tether.runtime.tracing import JsonlTraceWriter

    if isinstance(trace, (str, Path)):
        path = Path(trace)
    else:
        return trace, None, False
    path.parent.mkdir(parents=True, exist_ok=True)
    return JsonlTraceWriter(path), path, True
