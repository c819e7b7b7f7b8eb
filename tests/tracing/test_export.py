"""Exporters (Chrome Trace Event JSON, OTLP JSON, JSON lines) on hand-built runs (the ``tether trace export``
command: tests/cli/test_cli_trace.py)."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tether.runtime.tracing import RunRecorder, TraceEvent, load_run, read_trace
from tether.runtime.tracing.export import ExportError, export_run
from tether.runtime.tracing.export_chrome import assign_lanes, to_chrome
from tether.runtime.tracing.export_otlp import to_otlp
from tether.runtime.tracing.spans import span_start

T0 = 1_796_200_000.0
HAVE_PROTO = importlib.util.find_spec("opentelemetry.proto") is not None
NODES = [
    {"id": "plan", "kind": "llm", "tool": None, "deps": []},
    {"id": "search_a", "kind": "tool", "tool": "search", "deps": ["plan"]},
    {"id": "search_b", "kind": "tool", "tool": "search", "deps": ["plan"]},
]


def ev(
    kind: str,
    ts: float,
    node_id: str | None = None,
    start: float | None = None,
    program_id: str = "p1",
    **attrs: Any,
) -> TraceEvent:
    """An event ``ts`` (and ``start``) seconds after ``T0``."""
    begin = None if start is None else T0 + start
    return TraceEvent(kind, program_id, T0 + ts, node_id, attrs, begin)  # type: ignore[arg-type]


def engine_request(program: str, rid: str, arrival: float, admitted: float, first: float | None, done: float):
    events = [
        ev("llm_queued", arrival, rid, program_id=program, request_id=rid, prompt_tokens=100),
        ev("llm_admitted", admitted, rid, arrival, program, request_id=rid, cached_tokens=32, queued_s=0.01),
        ev("llm_prefill", admitted + 0.01, rid, admitted, program, request_id=rid, tokens=68, position=32),
    ]
    if first is not None:
        events.append(ev("llm_first_token", first, rid, program_id=program, request_id=rid))
    finished = dict(
        request_id=rid, input_tokens=100, cached_tokens=32, output_tokens=20, finish_reason="stop"
    )
    events.append(ev("llm_finished", done, rid, arrival, program, **finished))
    return events


def research_events() -> list[TraceEvent]:
    """plan (LLM) -> search_a, search_b (parallel tools; search_b times out once and is retried) -> summarize
    (added at run time), with the engine's requests, steps and KV events."""
    start = dict(program="research", nodes=NODES, edges=[["plan", "search_a"], ["plan", "search_b"]])
    start |= {
        "critical_path_s": 0.9,
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.conversation.id": "conv-1",
    }
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "worker": "local"}
    chat = {"gen_ai.operation.name": "chat", "attempt": 1, "status": "ok", "gen_ai.usage.input_tokens": 100}
    return [
        ev("program_start", 0.0, **start),
        ev("node_start", 0.01, "plan", category="node", node_kind="llm", level=0, deps=[]),
        *engine_request("p1", "req-1", 0.02, 0.05, 0.10, 0.30),
        ev("llm_turn", 0.31, "plan", 0.015, request_id="req-1", **chat),
        ev("kv", 0.31, "req-1", action="pin_created", blocks=7, ttl_s=2.0, tool="search"),
        ev("node_end", 0.32, "plan", 0.01, category="node", duration_s=0.31, output="q"),
        ev("node_start", 0.33, "search_a", category="node", node_kind="tool", level=1, deps=["plan"]),
        ev("node_start", 0.33, "search_b", category="node", node_kind="tool", level=1, deps=["plan"]),
        ev("node_added", 0.35, node={"id": "summarize", "kind": "llm", "tool": None, "deps": ["search_a", "search_b"]}),
        ev("tool_call", 0.40, "search_b", 0.33, attempt=1, status="timeout", error="timed out", **tool),
        ev("tool_call", 0.50, "search_a", 0.33, attempt=1, status="ok", **tool),
        ev("node_end", 0.51, "search_a", 0.33, category="node", duration_s=0.18, output="a"),
        ev("tool_call", 0.60, "search_b", 0.41, attempt=2, status="ok", **tool),
        ev("node_end", 0.61, "search_b", 0.33, category="node", duration_s=0.28, output="b"),
        ev("node_start", 0.62, "summarize", category="node", node_kind="llm", level=2, deps=["search_a", "search_b"]),
        ev("kv", 0.63, "req-2", action="pin_hit", blocks=7),
        *engine_request("p1", "req-2", 0.63, 0.64, 0.70, 0.89),
        ev("llm_turn", 0.90, "summarize", 0.62, request_id="req-2", **chat),
        ev("node_end", 0.91, "summarize", 0.62, category="node", duration_s=0.29, output="s"),
        ev("program_end", 0.95, None, 0.0, status="ok", duration_s=0.95),
        *engine_request("_engine", "req-x", 0.20, 0.21, None, 0.25),
        ev("kv", 0.70, None, program_id="_engine", action="pin_expired", blocks=3),
        *[
            ev("engine_step", 0.1 * k + 0.1, None, 0.1 * k + 0.05, "_engine", running=2, waiting=k % 2,
               blocks_used=10 + k, blocks_pinned=7, blocks_cached=4, blocks_free=100 - k, blocks_cpu=0, tokens=64)
            for k in range(5)
        ],
    ]  # fmt: skip


def record(tmp_path: Path, traces: dict[str, list[TraceEvent]], kind: str = "run") -> str:
    recorder = RunRecorder(kind, "research", trace_dir=tmp_path)
    for name, events in traces.items():
        writer = recorder.trace(name)
        for event in events:
            writer.emit(event)
    recorder.end("ok")
    return recorder.run_id


@pytest.fixture
def run(tmp_path: Path):
    return load_run(tmp_path, record(tmp_path, {"main": research_events()}))


def test_assign_lanes_interval_partitioning() -> None:
    # a lane is free again when its last interval ended at or before the next one's start
    assert assign_lanes([(0, 10), (5, 8), (8, 12), (10, 11), (12, 20), (0, 0)]) == [0, 1, 1, 0, 0, 0]
    assert assign_lanes([]) == []


def test_span_start_falls_back_to_duration() -> None:
    assert span_start(TraceEvent("node_end", "p", 10.0, "n", {"duration_s": 2.5})) == 7.5
    assert span_start(TraceEvent("node_end", "p", 10.0, "n", {"duration_s": 2.5}, 9.0)) == 9.0
    assert span_start(TraceEvent("kv", "p", 10.0, None, {"duration_s": 2.5})) == 10.0


# ---- chrome


def x_events(doc: dict) -> list[dict]:
    return [e for e in doc["traceEvents"] if e["ph"] == "X"]


def names(doc: dict, meta: str) -> dict:
    return {(e["pid"], e["tid"]) if meta == "thread_name" else e["pid"]: e["args"]["name"]
            for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == meta}  # fmt: skip


def assert_chrome_well_formed(doc: dict) -> None:
    assert doc["displayTimeUnit"] == "ms"
    lanes = defaultdict(list)
    for e in x_events(doc):
        assert e["ts"] >= 0 and e["dur"] >= 0, e
        lanes[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in lanes.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, spans
    flows = defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] in ("s", "f"):
            flows[e["id"]].append(e)
    for pair in flows.values():
        assert sorted(e["ph"] for e in pair) == ["f", "s"]
        s, f = sorted(pair, key=lambda e: e["ph"], reverse=True)
        assert (s["cat"], s["name"]) == (f["cat"], f["name"]) and f["bp"] == "e"


def test_chrome_layout(run) -> None:
    doc = json.loads(export_run(run, "chrome"))
    assert_chrome_well_formed(doc)
    processes = names(doc, "process_name")
    assert sorted(processes.values()) == ["engine", "research"]
    research = next(pid for pid, name in processes.items() if name == "research")
    engine = next(pid for pid, name in processes.items() if name == "engine")
    threads = names(doc, "thread_name")
    lane = {
        (e["name"], e["ts"]): threads[(e["pid"], e["tid"])] for e in x_events(doc) if e["pid"] == research
    }
    us = 1000  # ms -> µs: times below are in ms from program_start
    assert lane[("invoke_agent research", 0)] == "program"
    assert lane[("plan", 10 * us)] == "nodes 1"
    assert lane[("search_a", 330 * us)] == "nodes 1"
    assert lane[("search_b", 330 * us)] == "nodes 2"
    assert lane[("summarize", 620 * us)] == "nodes 1"
    assert lane[("chat plan", 15 * us)] == "calls 1"
    assert lane[("chat summarize", 620 * us)] == "calls 1"
    program = next(e for e in x_events(doc) if e["name"] == "invoke_agent research")
    assert (program["ts"], program["dur"], program["cat"]) == (0, 950 * us, "program")
    assert {
        e["cat"] for e in x_events(doc) if e["name"] in ("plan", "search_a", "search_b", "summarize")
    } == {"node"}

    phases = [
        (e["name"], e["ts"], e["dur"]) for e in x_events(doc) if e["cat"] == "engine" and e["name"] != "step"
    ]
    assert sorted(p for p in phases) == sorted([
        ("queued", 20 * us, 30 * us), ("prefill", 50 * us, 50 * us), ("decode", 100 * us, 200 * us),
        ("queued", 630 * us, 10 * us), ("prefill", 640 * us, 60 * us), ("decode", 700 * us, 190 * us),
        ("queued", 200 * us, 10 * us), ("running", 210 * us, 40 * us),
    ])  # fmt: skip
    request_pids = {e["args"]["request_id"]: e["pid"] for e in x_events(doc) if e["name"] == "queued"}
    assert request_pids == {"req-1": research, "req-2": research, "req-x": engine}
    assert {threads[(e["pid"], e["tid"])] for e in x_events(doc) if e["name"] == "step"} == {"steps"}

    flows = {e["name"] for e in doc["traceEvents"] if e["ph"] == "s"}
    assert flows == {"plan -> search_a", "plan -> search_b", "search_a -> summarize", "search_b -> summarize"}
    s = next(e for e in doc["traceEvents"] if e["ph"] == "s" and e["name"] == "plan -> search_b")
    f = next(e for e in doc["traceEvents"] if e["ph"] == "f" and e["name"] == "plan -> search_b")
    assert (s["pid"], threads[(s["pid"], s["tid"])], s["ts"]) == (research, "nodes 1", 320 * us - 1)
    assert (f["pid"], threads[(f["pid"], f["tid"])], f["ts"]) == (research, "nodes 2", 330 * us + 1)

    counters = [e for e in doc["traceEvents"] if e["ph"] == "C"]
    assert Counter(e["name"] for e in counters) == {"KV blocks": 5, "queue": 5}
    assert {e["pid"] for e in counters} == {engine}
    first_kv = min((e for e in counters if e["name"] == "KV blocks"), key=lambda e: e["ts"])
    assert first_kv["args"] == {"used": 10, "pinned": 7, "cached": 4, "free": 100, "cpu": 0}
    assert first_kv["ts"] == 100 * us
    assert min((e for e in counters if e["name"] == "queue"), key=lambda e: e["ts"])["args"] == {
        "running": 2,
        "waiting": 0,
    }

    instants = Counter((e["name"], e["pid"]) for e in doc["traceEvents"] if e["ph"] == "i")
    assert instants == {
        ("pin_created", research): 1,
        ("pin_hit", research): 1,
        ("pin_expired", engine): 1,
        ("llm_queued", research): 2,
        ("llm_queued", engine): 1,
        ("llm_first_token", research): 2,
        ("node_added summarize", research): 1,
    }
    assert all(e["s"] == "p" for e in doc["traceEvents"] if e["ph"] == "i")


def test_chrome_tool_lanes(run) -> None:
    doc = to_chrome(run)
    threads = names(doc, "thread_name")
    tools = {(e["args"]["attempt"], e["ts"], e["dur"]): threads[(e["pid"], e["tid"])]
             for e in x_events(doc) if e["name"] == "execute_tool search"}  # fmt: skip
    # by start then end: search_b's first try (ends first) takes lane 1, search_a lane 2, the retry lane 1
    assert tools == {
        (1, 330_000, 70_000): "calls 1",
        (1, 330_000, 170_000): "calls 2",
        (2, 410_000, 190_000): "calls 1",
    }


# ---- OTLP


def spans_of(doc: dict) -> list[dict]:
    return [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def attr(span: dict, key: str) -> Any:
    value = next(a["value"] for a in span["attributes"] if a["key"] == key)
    return next(iter(value.values()))


def parse_otlp(doc: dict) -> Any:
    """``doc`` through protobuf's JSON parser. OTLP/JSON writes ids as hex where protobuf's JSON mapping has
    base64, so the ids are converted first (and must be 16 and 8 bytes)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def b64(hex_id: str, size: int) -> str:
        raw = bytes.fromhex(hex_id)
        assert len(raw) == size
        return base64.b64encode(raw).decode()

    doc = copy.deepcopy(doc)
    for span in spans_of(doc):
        span["traceId"], span["spanId"] = b64(span["traceId"], 16), b64(span["spanId"], 8)
        if "parentSpanId" in span:
            span["parentSpanId"] = b64(span["parentSpanId"], 8)
        for link in span.get("links", ()):
            link["traceId"], link["spanId"] = b64(link["traceId"], 16), b64(link["spanId"], 8)
    return json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())


def assert_otlp_well_formed(doc: dict) -> None:
    """OTLP's parser accepts it (when opentelemetry-proto is installed; ``test_otlp_parses`` says when it is
    not), ids are hex, every parent is a span of the same trace and holds its children."""
    if HAVE_PROTO:
        parse_otlp(doc)
    spans = spans_of(doc)
    by_id = {(s["traceId"], s["spanId"]): s for s in spans}
    assert len(by_id) == len(spans)
    for s in spans:
        assert len(s["traceId"]) == 32 and len(s["spanId"]) == 16
        int(s["traceId"], 16), int(s["spanId"], 16)
        assert s["kind"] == 1 and s["status"]["code"] in (0, 1, 2)
        start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        assert start <= end
        if "parentSpanId" in s:
            parent = by_id[(s["traceId"], s["parentSpanId"])]
            assert int(parent["startTimeUnixNano"]) <= start and end <= int(parent["endTimeUnixNano"])


def test_otlp_parses(run) -> None:
    pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is not installed (the test extra)")
    doc = json.loads(export_run(run, "otlp-json"))
    request = parse_otlp(doc)
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [(s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex()) for s in spans] == [
        (s["traceId"], s["spanId"], s.get("parentSpanId", "")) for s in spans_of(doc)
    ]
    assert len(spans) == 12 and sum(s.name == "execute_tool search" for s in spans) == 3
    assert all(s.end_time_unix_nano >= s.start_time_unix_nano > 0 for s in spans)
    assert {s.status.code for s in spans} == {0, 1, 2}


def test_otlp_tree(run) -> None:
    text = export_run(run, "otlp-json")
    assert export_run(run, "otlp-json") == text  # reproducible ids
    doc = json.loads(text)
    assert_otlp_well_formed(doc)
    (resource,) = doc["resourceSpans"]
    assert {a["key"]: a["value"] for a in resource["resource"]["attributes"]}["tether.trace"] == {
        "stringValue": "main"
    }
    spans = spans_of(doc)
    assert len({s["traceId"] for s in spans}) == 2  # the program, and the engine's own request
    by_name = defaultdict(list)
    for s in spans:
        by_name[s["name"]].append(s)
    (root,) = by_name["invoke_agent research"]
    assert "parentSpanId" not in root
    assert attr(root, "gen_ai.operation.name") == "invoke_agent"
    assert attr(root, "gen_ai.conversation.id") == "conv-1"
    assert root["status"] == {"code": 1}
    assert (int(root["startTimeUnixNano"]), int(root["endTimeUnixNano"])) == (
        round(T0 * 1e6) * 1000,
        round((T0 + 0.95) * 1e6) * 1000,
    )
    nodes = {n: by_name[n][0] for n in ("plan", "search_a", "search_b", "summarize")}
    assert all(s["parentSpanId"] == root["spanId"] and attr(s, "category") == "node" for s in nodes.values())
    assert {link["spanId"] for link in nodes["summarize"]["links"]} == {
        nodes["search_a"]["spanId"],
        nodes["search_b"]["spanId"],
    }

    tools = by_name["execute_tool search"]
    assert len(tools) == sum(e.kind == "tool_call" for e in run.traces["main"]) == 3
    parents = Counter(next(n for n, s in nodes.items() if s["spanId"] == t["parentSpanId"]) for t in tools)
    assert parents == {"search_a": 1, "search_b": 2}
    assert sorted(t["status"]["code"] for t in tools) == [1, 1, 2]

    chats = {attr(s, "request_id"): s for s in by_name["chat"]}
    assert set(chats) == {"req-1", "req-2", "req-x"}
    assert chats["req-1"]["parentSpanId"] == nodes["plan"]["spanId"]
    assert chats["req-2"]["parentSpanId"] == nodes["summarize"]["spanId"]
    assert [e["name"] for e in chats["req-1"]["events"]] == [
        "llm_queued", "llm_admitted", "llm_prefill", "llm_first_token", "llm_finished", "kv pin_created",
    ]  # fmt: skip
    (engine_root,) = by_name["engine"]
    assert chats["req-x"]["parentSpanId"] == engine_root["spanId"]
    assert attr(chats["req-x"], "gen_ai.usage.input_tokens") == "100"
    assert [e["name"] for e in engine_root["events"]] == ["kv pin_expired"]


def test_otlp_attribute_values() -> None:
    from tether.runtime.tracing.export_otlp import any_value

    assert any_value(True) == {"boolValue": True}
    assert any_value(3) == {"intValue": "3"}
    assert any_value(0.5) == {"doubleValue": 0.5}
    assert any_value(float("nan")) == {"doubleValue": "NaN"}
    assert any_value(["a", 1]) == {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}
    assert any_value([["a", "b"]]) == {"stringValue": '[["a","b"]]'}
    assert any_value({"k": float("inf")}) == {"stringValue": '{"k":null}'}


# ---- jsonl


def test_jsonl_round_trips(run, tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(export_run(run, "jsonl"))
    assert read_trace(path) == run.traces["main"]
    assert all("trace" not in json.loads(line) for line in path.read_text().splitlines())


# ---- several traces (a replay)


def test_replay_run_traces(tmp_path: Path) -> None:
    late = [TraceEvent(e.kind, e.program_id, e.ts + 5, e.node_id, e.attrs, e.start and e.start + 5)
            for e in research_events()]  # fmt: skip
    run = load_run(tmp_path, record(tmp_path, {"vllm": research_events(), "tether": late}, kind="replay"))

    doc = to_chrome(run)
    assert_chrome_well_formed(doc)
    assert sorted(names(doc, "process_name").values()) == [
        "tether/engine",
        "tether/research",
        "vllm/engine",
        "vllm/research",
    ]
    one = to_chrome(run, "tether")
    assert sorted(names(one, "process_name").values()) == ["engine", "research"]
    assert min(e["ts"] for e in x_events(one)) == 0

    otlp = to_otlp(run)
    assert_otlp_well_formed(otlp)
    assert [attr(rs["resource"], "tether.trace") for rs in otlp["resourceSpans"]] == ["vllm", "tether"]
    assert len({s["traceId"] for s in spans_of(otlp)}) == 4

    path = tmp_path / "all.jsonl"
    path.write_text(export_run(run, "jsonl"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert Counter(line["trace"] for line in lines) == {"vllm": len(late), "tether": len(late)}
    assert read_trace(path) == run.traces["vllm"] + run.traces["tether"]

    with pytest.raises(ExportError, match="no trace 'sglang'"):
        export_run(run, "chrome", "sglang")
    with pytest.raises(ExportError, match="unknown export format"):
        export_run(run, "svg")


def test_incomplete_run(tmp_path: Path) -> None:
    """A crash: no program_end, a node that never ended, spans recorded with ``duration_s`` only, a cut last
    line. Every format still exports; the open node's span covers its call."""
    events = research_events()[:6] + [
        TraceEvent("tool_call", "p1", T0 + 0.5, "plan", {"gen_ai.tool.name": "search", "duration_s": 0.1}),
        ev("node_start", 0.6, "late", category="node", node_kind="tool", level=1, deps=[]),
    ]
    run_id = record(tmp_path, {"main": events})
    with (tmp_path / run_id / "events.jsonl").open("a") as f:
        f.write('{"kind": "node_end", "program_id": "p1", "ts"')
    run = load_run(tmp_path, run_id)
    assert len(run.traces["main"]) == len(events)

    doc = to_chrome(run)
    assert_chrome_well_formed(doc)
    tool = next(e for e in x_events(doc) if e["name"] == "execute_tool search")
    assert (tool["ts"], tool["dur"]) == (400_000, 100_000)
    assert not [e for e in x_events(doc) if e["cat"] in ("node", "program")]

    otlp = to_otlp(run)
    assert_otlp_well_formed(otlp)
    spans = {s["name"]: s for s in spans_of(otlp)}
    assert spans["invoke_agent research"]["status"] == {"code": 0}
    assert spans["execute_tool search"]["parentSpanId"] == spans["plan"]["spanId"]
    assert (spans["plan"]["startTimeUnixNano"], spans["plan"]["endTimeUnixNano"]) == (
        str(round((T0 + 0.01) * 1e6) * 1000),
        str(round((T0 + 0.5) * 1e6) * 1000),
    )
    assert spans["late"]["startTimeUnixNano"] == spans["late"]["endTimeUnixNano"]


def test_empty_run(tmp_path: Path) -> None:
    run = load_run(tmp_path, record(tmp_path, {"main": []}))
    assert to_chrome(run) == {"traceEvents": [], "displayTimeUnit": "ms"}
    assert spans_of(to_otlp(run)) == []
    assert export_run(run, "jsonl") == ""
