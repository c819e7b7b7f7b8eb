"""The engine's trace events (docs/tracing.md) on the tiny model: one request's life in order, KV pin events
across a tool pause, per-step counters, aborts; and the run store's files."""

from __future__ import annotations

import json

import pytest

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.tracing import (
    MemoryTraceSink,
    RunRecorder,
    TraceFormatError,
    list_runs,
    load_run,
    read_trace,
)

PARAMS = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)


def run_all(engine: LLMEngine) -> None:
    while engine.has_unfinished():
        engine.step()


def test_a_programs_two_turns_emit_their_lives_and_the_pin_between_them() -> None:
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=64, policy="tether"))
    sink = MemoryTraceSink()
    engine.trace_to(sink)
    prompt = list(range(1, 41))
    engine.add_request(prompt, PARAMS, request_id="p#0", hints=ProgramHints("p", 0, next_tool="search"))
    run_all(engine)
    engine.add_request(
        prompt + [7] * 12, PARAMS, request_id="p#1", hints=ProgramHints("p", 1, last_turn=True)
    )
    run_all(engine)
    engine.check_integrity()

    mine = [e for e in sink.events if e.program_id == "p"]
    life = [(e.kind, e.node_id) for e in mine if e.kind.startswith("llm_")]
    assert life == [
        ("llm_queued", "p#0"), ("llm_admitted", "p#0"), ("llm_prefill", "p#0"), ("llm_first_token", "p#0"),
        ("llm_finished", "p#0"),
        ("llm_queued", "p#1"), ("llm_admitted", "p#1"), ("llm_prefill", "p#1"), ("llm_first_token", "p#1"),
        ("llm_finished", "p#1"),
    ]  # fmt: skip
    kv = [(e.attrs["action"], e.attrs.get("tool")) for e in mine if e.kind == "kv"]
    assert kv == [("pin_created", "search"), ("pin_hit", None)]
    by = {(e.kind, e.node_id): e for e in mine}
    assert by[("llm_prefill", "p#0")].attrs == {"request_id": "p#0", "tokens": 40, "position": 0}
    assert by[("llm_admitted", "p#1")].attrs["cached_tokens"] == 32  # two full blocks pinned across the pause
    assert by[("llm_prefill", "p#1")].attrs == {"request_id": "p#1", "tokens": 20, "position": 32}
    finished = by[("llm_finished", "p#1")].attrs
    assert (finished["input_tokens"], finished["cached_tokens"], finished["output_tokens"]) == (52, 32, 4)
    assert finished["finish_reason"] == "length"
    created = next(e for e in mine if e.kind == "kv" and e.attrs["action"] == "pin_created")
    assert created.attrs["blocks"] == 2 and created.attrs["ttl_s"] > 0
    # one clock: every span starts before it ends, and events come in time order
    stamps = [e.ts for e in sink.events]
    assert stamps == sorted(stamps)
    assert all(e.start is None or e.start <= e.ts for e in sink.events)
    steps = [e for e in sink.events if e.kind == "engine_step"]
    assert steps and all(e.program_id == "_engine" for e in steps)
    assert {
        "running",
        "waiting",
        "blocks_used",
        "blocks_pinned",
        "blocks_cached",
        "blocks_free",
        "blocks_cpu",
    } <= set(steps[0].attrs)
    assert any(e.attrs["blocks_pinned"] == 2 for e in steps)


def test_an_aborted_request_finishes_with_abort_and_requests_without_a_program_go_to_engine() -> None:
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=64))
    sink = MemoryTraceSink()
    engine.trace_to(sink)
    engine.add_request([1, 2, 3], SamplingParams(max_tokens=50, ignore_eos=True), request_id="r")
    engine.step()
    engine.abort("r")
    engine.check_integrity()
    (end,) = sink.of_kind("llm_finished")
    assert end.program_id == "_engine" and end.attrs["finish_reason"] == "abort"
    engine.trace_to(None)
    engine.add_request([1, 2, 3], PARAMS, request_id="quiet")
    run_all(engine)
    assert not [e for e in sink.events if e.node_id == "quiet"]


def test_the_run_store_writes_flushed_lines_and_reads_back_a_truncated_tail(tmp_path) -> None:
    recorder = RunRecorder("run", "demo flow", trace_dir=tmp_path, meta={"model": "tiny"})
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=32))
    engine.trace_to(recorder.trace())
    engine.trace_to(recorder.trace())  # the same writer
    engine.add_request([5] * 20, PARAMS, request_id="a", hints=ProgramHints("demo"))
    run_all(engine)
    events_file = recorder.dir / "events.jsonl"
    written = read_trace(events_file)  # readable while the run is open (read_trace waits for its writers)
    assert [e.kind for e in written if e.program_id == "demo"][0] == "llm_queued"
    assert json.loads((recorder.dir / "run.json").read_text())["status"] == "running"
    recorder.end("ok")
    meta = list_runs(tmp_path)[0]
    assert recorder.run_id.startswith("demo-flow-")
    assert (meta["run_id"], meta["kind"], meta["status"], meta["model"]) == (
        recorder.run_id,
        "run",
        "ok",
        "tiny",
    )
    assert meta["ended"] >= meta["started"]
    with events_file.open("a") as f:
        f.write('{"kind": "llm_queued", "program_id": "dem')  # a crash mid-line
    run = load_run(tmp_path, recorder.run_id)
    assert len(run.traces["main"]) == len(written)
    lines = events_file.read_text().split("\n")
    lines.insert(1, "not json")
    events_file.write_text("\n".join(lines))
    with pytest.raises(TraceFormatError) as err:
        load_run(tmp_path, recorder.run_id)
    assert err.value.line == 2 and str(events_file) in str(err.value)


def test_every_unpin_is_an_event_saying_why() -> None:
    """A pin that ends without a hit, an expiry, a drop or a park is still traced (``unpinned``, with its
    reason), so the UI's pinned band ends where the counters' pinned blocks do: an admission whose prompt
    matches none of the pinned prefix, and a program ended while pinned."""
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=64, policy="tether"))
    sink = MemoryTraceSink()
    engine.trace_to(sink)
    engine.add_request(list(range(1, 41)), PARAMS, request_id="a#0", hints=ProgramHints("a", 0, next_tool="t"))
    engine.add_request(list(range(50, 90)), PARAMS, request_id="b#0", hints=ProgramHints("b", 0, next_tool="t"))
    run_all(engine)
    other = list(range(100, 140))  # a different prompt: nothing of the pinned prefix is reused
    engine.add_request(other, PARAMS, request_id="a#1", hints=ProgramHints("a", 1, next_tool="t"))
    run_all(engine)
    engine.end_program("b")
    engine.check_integrity()
    kv = [(e.program_id, e.attrs["action"], e.attrs.get("reason")) for e in sink.events if e.kind == "kv"]
    assert kv == [
        ("a", "pin_created", None),
        ("b", "pin_created", None),
        ("a", "unpinned", "admitted"),
        ("a", "pin_created", None),
        ("b", "unpinned", "program_end"),
    ]
