"""``Deployment``: the context a process runs programs in. It holds the deployment's tool-duration statistics,
the run's trace (a run recorded in the run store, or a sink given to it) and the LLM backend, and closes them
together. ``tether run`` (``run_workflow``), ``tether serve`` and ``AgentRuntime`` each run in one.

    async with Deployment() as deployment:          # on exit: closed, the run ended "ok" (or "failed")
        await deployment.record("run", "research", trace_dir="runs")
        llm = await deployment.start_local_engine(EngineConfig(model="smollm2"))
        tools = LocalToolRunner(registry, deployment.stats)
        await Executor(tools, llm, trace=deployment.trace).run(compiled)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.runtime.tracing import JsonlTraceWriter, RunRecorder, TraceSink
from tether.tools.durations import ToolDurationStats
from tether.tools.store import deployment_stats, save_deployment_stats

if TYPE_CHECKING:
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.sequence import Sequence, TurnOutcome
    from tether.runtime.executor.backends.local_engine import LocalEngineBackend
    from tether.runtime.executor.llm import LLMBackend


class DeploymentError(RuntimeError):
    """A deployment used out of turn: a second trace or backend, or one set after ``close``."""


class Deployment:
    """One deployment context. Rules:

    - ``stats`` is the deployment's one ``ToolDurationStats`` (``tether.tools.store.deployment_stats()``);
      the compiler, the local tool runner and the engine all get this object.
    - One trace (``record`` or ``use_trace``) and one backend (``start_local_engine``, ``connect_openai`` or
      ``use_backend``), set in either order, each at most once (``DeploymentError`` otherwise). An engine
      started here sends its own events to the trace, whichever of the two came first.
    - ``close(status)`` acts once (later calls do nothing), in this order, each step also when an earlier one
      raised: it closes the backend if it was made here, closes the trace if it was opened here (a JSONL
      path), saves ``stats`` to the deployment's file, and ends the recorded run with ``status``. A backend
      or a sink given with ``use_backend`` / ``use_trace`` stays open: it is the caller's.
    - ``async with`` closes on exit: ``"failed"`` when an exception leaves the block, else ``"ok"``.
    """

    def __init__(self) -> None:
        self.stats: ToolDurationStats = deployment_stats()
        self.trace: TraceSink | None = None
        self.trace_path: Path | None = None  # where ``trace`` writes, when it is a file
        self.recorder: RunRecorder | None = None
        self.backend: LLMBackend | None = None
        self._engine: LocalEngineBackend | None = None
        self._owns_trace = False
        self._owns_backend = False
        self._closed = False

    # -- the trace ------------------------------------------------------------------------------------------
    async def record(
        self,
        kind: str,
        name: str,
        *,
        trace_dir: str | Path | None = None,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> RunRecorder:
        """Record the run (``RunRecorder``: ``run.json`` and ``events.jsonl`` under ``trace_dir``, default
        ``trace_root()``; docs/tracing.md): ``trace`` becomes its event writer, ``close`` ends it.
        ``ValueError`` for an unknown ``kind`` or a bad or taken ``run_id``."""
        self._check("trace", self.trace)
        self.recorder = RunRecorder(kind, name, trace_dir=trace_dir, meta=meta, run_id=run_id)
        writer = self.recorder.trace()
        await self._set_trace(writer, writer.path, owned=False)  # the recorder closes its writers
        return self.recorder

    async def use_trace(self, trace: TraceSink | Path | str) -> None:
        """Events to ``trace``: a sink (the caller's) or the path of a JSONL file (its folder made; opened here,
        closed by ``close``). No run is recorded."""
        self._check("trace", self.trace)
        if isinstance(trace, (str, Path)):
            path = Path(trace)
            path.parent.mkdir(parents=True, exist_ok=True)
            await self._set_trace(JsonlTraceWriter(path), path, owned=True)
        else:
            await self._set_trace(trace, None, owned=False)

    async def _set_trace(self, sink: TraceSink, path: Path | None, *, owned: bool) -> None:
        self.trace, self.trace_path, self._owns_trace = sink, path, owned
        await self._trace_engine()

    # -- the backend ----------------------------------------------------------------------------------------
    async def start_local_engine(
        self,
        config: EngineConfig,
        *,
        turn_outcome: Callable[[Sequence], TurnOutcome] | None = None,
    ) -> LocalEngineBackend:
        """Start an in-process engine on ``config`` reading ``stats`` (``AsyncEngine.create``) behind a
        ``LocalEngineBackend``. A turn's outcome is what its request's reader says (``TurnReaders``: the
        executor's requests carry one), else ``turn_outcome(seq)`` (default: the request's hints). Its own
        events go to the trace; ``close`` stops it. The engine's errors propagate (``EngineError``,
        ``ModelLoadError``)."""
        self._check("backend", self.backend)
        from tether.runtime.engine.async_engine import AsyncEngine
        from tether.runtime.executor.backends.local_engine import LocalEngineBackend
        from tether.runtime.executor.backends.turn_readers import TurnReaders

        readers = TurnReaders(turn_outcome)
        engine = await AsyncEngine.create(config, tool_stats=self.stats, turn_outcome=readers.outcome)
        backend = LocalEngineBackend(engine, owns_engine=True, readers=readers)
        self.backend, self._owns_backend, self._engine = backend, True, backend
        await self._trace_engine()
        return backend

    def connect_openai(
        self, base_url: str, model: str, *, api_key: str | None = None, router: str = "program"
    ) -> LLMBackend:
        """An ``OpenAIBackend`` for ``model`` on the OpenAI-compatible server at ``base_url``; several URLs,
        comma-separated, make a ``RoutedBackend`` over one each, calls placed by ``router`` (docs/cluster.md;
        ``ValueError`` for an unknown one). ``close`` closes their HTTP clients."""
        self._check("backend", self.backend)
        from tether.runtime.cluster.routers import get_router
        from tether.runtime.executor.backends.openai import OpenAIBackend
        from tether.runtime.executor.backends.routed import RoutedBackend

        urls = [u.strip() for u in base_url.split(",") if u.strip()]
        chosen = get_router(router)
        backend: LLMBackend
        if len(urls) > 1:
            backend = RoutedBackend({u: OpenAIBackend(u, model, api_key=api_key) for u in urls}, chosen)
        else:
            backend = OpenAIBackend(base_url, model, api_key=api_key)
        self.backend, self._owns_backend = backend, True
        return backend

    def use_backend(self, backend: LLMBackend) -> None:
        """LLM calls on ``backend``, the caller's: ``close`` leaves it open, and a local engine in it keeps its
        own trace setting."""
        self._check("backend", self.backend)
        self.backend = backend

    async def _trace_engine(self) -> None:
        engine, sink = self._engine, self.trace
        if engine is not None and sink is not None:
            await engine.engine.call(lambda e: e.trace_to(sink))

    def _check(self, what: str, current: object) -> None:
        if self._closed:
            raise DeploymentError(f"the deployment is closed: cannot set its {what}")
        if current is not None:
            raise DeploymentError(f"the deployment already has a {what}")

    # -- the end --------------------------------------------------------------------------------------------
    async def close(self, status: str = "ok") -> None:
        """Close the backend made here, the trace opened here, save ``stats`` and end the recorded run with
        ``status``; once (see the class's rules)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_backend and self.backend is not None:
                await self.backend.close()
        finally:
            try:
                if self._owns_trace and self.trace is not None:
                    self.trace.close()
            finally:
                save_deployment_stats()
                if self.recorder is not None:
                    self.recorder.end(status)

    async def __aenter__(self) -> Deployment:
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.close("failed" if exc_type is not None else "ok")
