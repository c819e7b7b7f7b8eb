"""``Deployment``: the deployment's tool statistics, one trace and one backend, set in either order and closed
together: in order (backend, trace, statistics, run), each step also after an earlier one failed, and once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.home import tether_home
from tether.runtime.deployment import Deployment, DeploymentError
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.sequence import Sequence, TurnOutcome
from tether.runtime.executor import LLMRequest, LLMResult
from tether.runtime.tracing import MemoryTraceSink
from tether.tools.store import FILE_NAME, deployment_stats


class GivenBackend:
    """An ``LLMBackend`` that is the caller's: it counts the times it is closed."""

    name = "given"

    def __init__(self) -> None:
        self.closed = 0

    async def complete(self, request: LLMRequest) -> LLMResult:
        raise AssertionError("no call in these tests")

    async def end_program(self, program_id: str) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1


class CountingSink(MemoryTraceSink):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def run_json(trace_dir: Path, run_id: str) -> dict:
    return json.loads((trace_dir / run_id / "run.json").read_text())


async def test_a_recorded_run_with_a_given_backend(tmp_path: Path) -> None:
    backend = GivenBackend()
    async with Deployment() as deployment:
        recorder = await deployment.record("run", "wf", trace_dir=tmp_path, run_id="r1", meta={"model": "m"})
        deployment.use_backend(backend)
        assert deployment.stats is deployment_stats()
        assert (deployment.recorder, deployment.backend) == (recorder, backend)
        assert deployment.trace is recorder.trace()
        assert deployment.trace_path == tmp_path / "r1" / "events.jsonl"
        assert run_json(tmp_path, "r1")["status"] == "running"
    meta = run_json(tmp_path, "r1")
    assert (meta["kind"], meta["name"], meta["model"], meta["status"]) == ("run", "wf", "m", "ok")
    assert backend.closed == 0  # the caller's
    assert json.loads((tether_home() / FILE_NAME).read_text()) == {"version": 1, "tools": {}}


async def test_an_error_in_the_block_ends_the_run_failed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with Deployment() as deployment:
            await deployment.record("run", "wf", trace_dir=tmp_path, run_id="r2")
            raise RuntimeError("boom")
    assert run_json(tmp_path, "r2")["status"] == "failed"
    assert (tether_home() / FILE_NAME).is_file()


async def test_close_goes_backend_trace_stats_and_acts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    monkeypatch.setattr(
        "tether.runtime.deployment.save_deployment_stats", lambda: log.append("stats") or True
    )
    deployment = Deployment()
    backend = deployment.connect_openai("http://127.0.0.1:9/v1", "m")
    real_close = backend.close

    async def close_backend() -> None:
        log.append("backend")
        await real_close()

    monkeypatch.setattr(backend, "close", close_backend)
    await deployment.use_trace(tmp_path / "deep" / "events.jsonl")  # a path: opened here, closed by close
    assert deployment.trace_path == tmp_path / "deep" / "events.jsonl" and deployment.trace_path.is_file()
    assert deployment.trace is not None and deployment.recorder is None
    real_trace_close = deployment.trace.close
    monkeypatch.setattr(deployment.trace, "close", lambda: (log.append("trace"), real_trace_close()))
    await deployment.close()
    await deployment.close()
    assert log == ["backend", "trace", "stats"]
    assert backend.client.is_closed


async def test_a_failing_backend_close_still_saves_and_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = Deployment()
    await deployment.record("agents", "agents", trace_dir=tmp_path, run_id="r3")
    backend = deployment.connect_openai("http://127.0.0.1:9/v1", "m")

    async def broken() -> None:
        raise OSError("socket gone")

    monkeypatch.setattr(backend, "close", broken)
    with pytest.raises(OSError, match="socket gone"):
        await deployment.close("ok")
    assert run_json(tmp_path, "r3")["status"] == "ok"
    assert (tether_home() / FILE_NAME).is_file()


async def test_a_given_sink_stays_open() -> None:
    sink = CountingSink()
    async with Deployment() as deployment:
        await deployment.use_trace(sink)
        assert (deployment.trace, deployment.trace_path) == (sink, None)
    assert sink.closed == 0


async def test_one_trace_and_one_backend(tmp_path: Path) -> None:
    deployment = Deployment()
    await deployment.use_trace(MemoryTraceSink())
    with pytest.raises(DeploymentError, match="already has a trace"):
        await deployment.record("run", "wf", trace_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before a run was made
    deployment.use_backend(GivenBackend())
    with pytest.raises(DeploymentError, match="already has a backend"):
        deployment.connect_openai("http://127.0.0.1:9/v1", "m")
    await deployment.close()
    with pytest.raises(DeploymentError, match="closed: cannot set its trace"):
        await deployment.use_trace(MemoryTraceSink())


@pytest.mark.parametrize("engine_first", [True, False])
async def test_the_engine_traces_to_the_deployment_in_either_order(engine_first: bool) -> None:
    deployment = Deployment()
    sink = MemoryTraceSink()
    config = EngineConfig(model="tiny", num_kv_blocks=16)

    def outcome(seq: Sequence) -> TurnOutcome:
        return TurnOutcome.from_hints(seq.hints)

    if engine_first:
        backend = await deployment.start_local_engine(config, turn_outcome=outcome)
        await deployment.use_trace(sink)
    else:
        await deployment.use_trace(sink)
        backend = await deployment.start_local_engine(config, turn_outcome=outcome)
    try:
        tracer_sink = await backend.engine.call(lambda e: e.tracer.sink if e.tracer is not None else None)
        assert tracer_sink is sink
        assert await backend.engine.call(lambda e: e.programs.ctx.tool_stats) is deployment.stats
        # a turn's outcome: its request's reader (TurnReaders), else the given turn_outcome
        assert backend.readers is not None and backend.readers.fallback is outcome
        assert await backend.engine.call(lambda e: e.programs.turn_outcome) == backend.readers.outcome
    finally:
        await deployment.close()
    assert not backend.engine._thread.is_alive()  # stopped: the deployment started it


async def test_a_given_backend_is_not_traced_by_the_deployment() -> None:
    from tether.runtime.executor.backends.local_engine import LocalEngineBackend

    backend = await LocalEngineBackend.create(EngineConfig(model="tiny", num_kv_blocks=16))
    try:
        async with Deployment() as deployment:
            deployment.use_backend(backend)
            await deployment.use_trace(MemoryTraceSink())
            assert await backend.engine.call(lambda e: e.tracer) is None
        assert await backend.engine.call(lambda e: e.tracer) is None  # and still running: the caller's
    finally:
        await backend.close()
