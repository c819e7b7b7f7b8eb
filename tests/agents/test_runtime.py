"""``AgentRuntime`` on its ``Deployment``: the tool runner and the compiler on the deployment's statistics, a
given backend and sink left open, a trace path closed, a recorded run ended, once."""

from __future__ import annotations

import json
from pathlib import Path

from tether.agents.runtime import AgentRuntime
from tether.runtime.executor import LLMRequest, LLMResult
from tether.runtime.tracing import MemoryTraceSink, read_trace
from tether.tools.store import deployment_stats


class GivenBackend:
    name = "given"

    def __init__(self) -> None:
        self.closed = 0

    async def complete(self, request: LLMRequest) -> LLMResult:
        return LLMResult("ok")

    async def end_program(self, program_id: str) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1


async def test_a_given_backend_and_a_trace_path(tmp_path: Path) -> None:
    backend = GivenBackend()
    path = tmp_path / "traces" / "agents.jsonl"
    rt = await AgentRuntime.create(backend=backend, trace=path, trace_dir=tmp_path / "runs")
    assert rt.tool_stats is deployment_stats() and rt.executor.tools.stats is rt.tool_stats
    assert (rt.backend, rt.trace_path, rt.recorder) == (backend, path, None)
    run = rt.start_program("p", program_id="p1")
    assert run.compiled.stats is rt.tool_stats
    run.seal()
    await run.wait()
    await rt.close()
    await rt.close()
    assert backend.closed == 0  # the caller's
    assert [e.kind for e in read_trace(path)] == ["program_start", "program_end"]  # closed: every event is in
    assert not (tmp_path / "runs").exists()  # a trace was given: no run recorded


async def test_a_recorded_run_ends_when_the_runtime_closes(tmp_path: Path) -> None:
    async with await AgentRuntime.create(model=None, trace_dir=tmp_path) as rt:
        assert rt.backend is None and rt.recorder is not None
        assert rt.trace_path == rt.recorder.dir / "events.jsonl"
        run_dir = rt.recorder.dir
        assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["kind"], meta["name"], meta["model"], meta["status"]) == ("agents", "agents", None, "ok")


async def test_a_given_sink_stays_open() -> None:
    class Sink(MemoryTraceSink):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    sink = Sink()
    async with await AgentRuntime.create(model=None, trace=sink) as rt:
        assert (rt.trace, rt.trace_path, rt.executor.trace) == (sink, None, sink)
    assert sink.closed == 0
