"""Runs written event by event with ``RunRecorder`` (docs/tracing.md): an agent run of two programs with
executor and engine events, a replay with a trace per policy, and broken ones. Times are fixed offsets
from ``BASE`` so the expected counts and token sums are exact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.runtime.tracing import ENGINE_PROGRAM, RunRecorder, TraceEvent

BASE = 1796200000.0


def ev(
    kind: str, pid: str, t: float, node: str | None = None, start: float | None = None, /, **attrs
) -> TraceEvent:
    """An event ``t`` seconds after ``BASE`` (``start`` likewise), its attributes as keywords."""
    return TraceEvent(kind, pid, BASE + t, node, attrs, None if start is None else BASE + start)  # type: ignore[arg-type]


def node_doc(id: str, kind: str, deps: list[str], tool: str | None = None) -> dict:
    return {"id": id, "kind": kind, "tool": tool, "deps": deps}


def tool_call(
    program: str, node: str, tool: str, start: float, end: float, attempt: int = 1, status: str = "ok"
):
    return ev(
        "tool_call", program, end, node, start,
        **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
           "gen_ai.tool.call.id": f"{program}/{node}#{attempt}", "attempt": attempt, "status": status,
           "worker": "local", "duration_s": end - start},
    )  # fmt: skip


def llm_turn(
    program: str, node: str, request: str, start: float, end: float, tokens: tuple[int, int, int], **extra
):
    return ev(
        "llm_turn", program, end, node, start,
        **{"gen_ai.operation.name": "chat", "request_id": request, "attempt": 1, "status": "ok",
           "gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1],
           "gen_ai.usage.cache_read.input_tokens": tokens[2], "gen_ai.conversation.id": program,
           "gen_ai.input.messages": '[{"role": "user", "content": "Summarize the sources."}]',
           "gen_ai.output.text": f"output of {node}", **extra},
    )  # fmt: skip


def engine_request(program: str, request: str, arrive: float, admit: float, first: float, end: float, tokens):
    """The engine's events of one request: queued, admitted, one prefill chunk, first token, finished."""
    inp, out, cached = tokens
    return [
        ev("llm_queued", program, arrive, request, request_id=request, prompt_tokens=inp),
        ev("llm_admitted", program, admit, request, arrive, request_id=request, cached_tokens=cached,
           queued_s=admit - arrive),
        ev("llm_prefill", program, first, request, admit, request_id=request, tokens=inp - cached, position=cached),
        ev("llm_first_token", program, first, request, request_id=request),
        ev("llm_finished", program, end, request, arrive, request_id=request, input_tokens=inp, cached_tokens=cached,
           output_tokens=out, finish_reason="length", queued_s=admit - arrive, ttft_s=first - arrive),
    ]  # fmt: skip


def research_program(p: str, t: float, *, fail: bool = False) -> list[TraceEvent]:
    """search → (read_first, read_second) → summarize → length, and ``followup`` added while it runs."""
    nodes = [
        node_doc("search", "tool", [], "search"),
        node_doc("read_first", "tool", ["search"], "fetch"),
        node_doc("read_second", "tool", ["search"], "fetch"),
        node_doc("summarize", "llm", ["read_first", "read_second"]),
        node_doc("length", "tool", ["summarize"], "word_count"),
    ]
    edges = [[d, n["id"]] for n in nodes for d in n["deps"]]
    out = [
        ev("program_start", p, t, None, program="research", nodes=nodes, edges=edges, critical_path_s=1.0,
           **{"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": p}),
        ev("node_start", p, t + 0.001, "search", category="node", node_kind="tool", level=0, deps=[]),
        tool_call(p, "search", "search", t + 0.002, t + 0.05),
        ev("node_end", p, t + 0.051, "search", t + 0.001, category="node", duration_s=0.05, output="[...]"),
        tool_call(p, "read_first", "fetch", t + 0.06, t + 0.3),
        tool_call(p, "read_second", "fetch", t + 0.06, t + 0.16, status="timeout"),
        tool_call(p, "read_second", "fetch", t + 0.17, t + 0.25, attempt=2),
        ev("node_end", p, t + 0.3, "read_first", t + 0.06, category="node", duration_s=0.24),
        ev("node_end", p, t + 0.25, "read_second", t + 0.06, category="node", duration_s=0.19),
        ev("node_start", p, t + 0.31, "summarize", category="node", node_kind="llm", level=2,
           deps=["read_first", "read_second"]),
        *engine_request(p, f"{p}-r1", t + 0.312, t + 0.35, t + 0.45, t + 1.19, (300, 48, 128)),
        llm_turn(p, "summarize", f"{p}-r1", t + 0.31, t + 1.2, (300, 48, 128)),
    ]  # fmt: skip
    if fail:
        return [
            *out[:-1],
            llm_turn(p, "summarize", f"{p}-r1", t + 0.31, t + 1.2, (300, 0, 128), status="error", error="refused"),
            ev("node_error", p, t + 1.2, "summarize", t + 0.31, category="node", duration_s=0.89,
               error_type="LLMError", error="the model refused"),
            ev("kv", p, t + 1.2, None, action="pin_created", blocks=12, ttl_s=0.5, tool="retry"),
            ev("kv", p, t + 1.7, None, action="pin_expired", blocks=12),
            ev("program_end", p, t + 1.75, None, t, status="failed", duration_s=1.75, error="summarize failed"),
        ]  # fmt: skip
    return [
        *out,
        ev("node_end", p, t + 1.2, "summarize", t + 0.31, category="node", duration_s=0.89, output="a summary"),
        ev("kv", p, t + 1.2, None, action="pin_created", blocks=20, ttl_s=2.0, tool="word_count"),
        tool_call(p, "length", "word_count", t + 1.21, t + 1.5),
        ev("node_added", p, t + 1.5, None, node=node_doc("followup", "llm", ["length"])),
        ev("kv", p, t + 1.5, None, action="pin_hit", blocks=20),
        ev("node_end", p, t + 1.5, "length", t + 1.21, category="node", duration_s=0.29, output=2),
        ev("node_start", p, t + 1.5, "followup", category="node", node_kind="llm", level=4, deps=["length"]),
        *engine_request(p, f"{p}-r2", t + 1.5, t + 1.52, t + 1.6, t + 1.99, (350, 20, 300)),
        llm_turn(p, "followup", f"{p}-r2", t + 1.5, t + 2.0, (350, 20, 300)),
        ev("node_end", p, t + 2.0, "followup", t + 1.5, category="node", duration_s=0.5, output="more"),
        ev("kv", p, t + 2.0, None, action="parked", blocks=8),
        ev("program_end", p, t + 2.05, None, t, status="ok", duration_s=2.05),
    ]  # fmt: skip


def engine_steps(t0: float, t1: float, every: float = 0.1) -> list[TraceEvent]:
    out, t, i = [], t0, 0
    while t <= t1:
        out.append(
            ev("engine_step", ENGINE_PROGRAM, t + every, None, t, running=1 + i % 2, waiting=i % 3,
               blocks_used=10 + i, blocks_pinned=i % 4, blocks_cached=5, blocks_free=100 - i, blocks_cpu=i % 5,
               tokens=32)
        )  # fmt: skip
        t, i = t + every, i + 1
    return out


def agent_events() -> list[TraceEvent]:
    events = research_program("research-a", 0.0) + research_program("research-b", 0.2, fail=True)
    events += engine_steps(0.0, 2.0)
    return sorted(events, key=lambda e: e.ts)


def write_agent_run(
    root: Path, *, running: bool = False, events: list[TraceEvent] | None = None
) -> RunRecorder:
    rec = RunRecorder(
        "run", "research", trace_dir=root, meta={"command": "tether run examples/research.yaml"}
    )
    rec.update(started=BASE)
    writer = rec.trace()
    for e in agent_events() if events is None else events:
        writer.emit(e)
    writer.flush()  # on disk before the page opens (the writer writes on its own thread)
    if not running:
        rec.end("ok")
        rec.update(ended=BASE + 2.1)
    return rec


def replay_program(policy: str, p: str, t: float, *, with_end: bool) -> list[TraceEvent]:
    """Two LLM requests around a tool call; tether pins the KV across the tool call, vllm does not."""
    slow = 0.3 if policy == "vllm" else 0.0
    out = [
        *engine_request(p, f"{p}-1", t, t + 0.05, t + 0.2, t + 0.5, (400, 30, 0)),
        *engine_request(p, f"{p}-2", t + 1.0, t + 1.05 + slow, t + 1.1 + 2 * slow, t + 1.4 + 2 * slow,
                        (450, 30, 0 if policy == "vllm" else 400)),
    ]  # fmt: skip
    if policy == "tether":
        out += [
            ev("kv", p, t + 0.5, None, action="pin_created", blocks=25, ttl_s=1.0, tool="search"),
            ev("kv", p, t + 1.0, None, action="pin_hit", blocks=25),
        ]
    if with_end:
        out.append(
            ev("program_end", p, t + 1.45 + 2 * slow, None, t, status="ok", duration_s=1.45 + 2 * slow)
        )
    return out


def write_replay_run(root: Path) -> RunRecorder:
    rec = RunRecorder("replay", "replay-research", trace_dir=root)
    rec.update(started=BASE)
    results = []
    for policy in ("vllm", "tether"):
        writer = rec.trace(policy)
        events = []
        for i in range(3):
            events += replay_program(policy, f"prog-{i}", 0.2 * i, with_end=i != 2)
        events += engine_steps(0.0, 2.0, every=0.25)
        for e in sorted(events, key=lambda e: e.ts):
            writer.emit(e)
        results.append({"policy": policy, "avg_jct_s": 2.05 if policy == "vllm" else 1.45, "programs": 3})
    rec.end("ok", results=results)
    rec.update(ended=BASE + 2.5)
    return rec


def write_malformed_run(root: Path) -> str:
    """A finished run whose trace has a bad line in the middle (line 3)."""
    rec = write_agent_run(root, events=research_program("bad", 0.0)[:4])
    path = rec.dir / "events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines[:2], '{"kind": "llm_turn", "program_id": \n', *lines[2:]]))
    return rec.run_id


def write_truncated_run(root: Path) -> str:
    """A run that crashed mid-line: its last line is cut and has no newline."""
    rec = write_agent_run(root, events=research_program("cut", 0.0)[:4], running=True)
    rec.trace().close()
    with (rec.dir / "events.jsonl").open("a") as f:
        f.write('{"kind": "tool_call", "program_id": "cut", "ts": 17962')
    rec.update(status="failed", ended=BASE + 1.0)
    return rec.run_id


def counts(events: list[TraceEvent]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out


@dataclass(frozen=True)
class Runs:
    """One folder holding each kind of run: ids of the agent and replay runs, a malformed and a truncated one."""

    root: Path
    agent: str
    replay: str
    malformed: str
    truncated: str


def write_runs(root: Path) -> Runs:
    return Runs(
        root,
        agent=write_agent_run(root).run_id,
        replay=write_replay_run(root).run_id,
        malformed=write_malformed_run(root),
        truncated=write_truncated_run(root),
    )


def model_load(start: float, end: float, model: str = "smollm2") -> TraceEvent:
    """The engine's model load, ``start`` .. ``end`` seconds after ``BASE``."""
    return ev(
        "model_load", ENGINE_PROGRAM, end, None, start, model=model, device="cuda:0", dtype="bfloat16",
        compiled=True, compile_s=4.5, duration_s=end - start,
    )  # fmt: skip


def pinned_steps(times: list[tuple[float, int]]) -> list[TraceEvent]:
    """``engine_step`` counters at each (time, pinned blocks), the other counters fixed."""
    return [
        ev("engine_step", ENGINE_PROGRAM, t, None, running=1, waiting=0, blocks_used=40 + pinned,
           blocks_pinned=pinned, blocks_cached=5, blocks_free=60 - pinned, blocks_cpu=0, tokens=16)
        for t, pinned in times
    ]  # fmt: skip


def long_run_events() -> list[TraceEvent]:
    """The issue's scale: a 20.8 s model load, 100 s LLM turns around a 2 ms tool call and a 54 ms pin, then a
    turn whose request never finished (admitted, first token, no llm_finished) and a served request still
    queued when the trace ends (at 210 s)."""
    p = "long"
    nodes = [node_doc("plan", "llm", []), node_doc("lookup", "tool", ["plan"], "lookup"),
             node_doc("answer", "llm", ["lookup"]), node_doc("check", "llm", ["answer"])]  # fmt: skip
    return [
        model_load(-20.8, 0.0),
        ev("program_start", p, 0.05, None, program="long", nodes=nodes, edges=[], critical_path_s=200.0),
        *engine_request(p, "long-r1", 0.1, 0.2, 5.0, 100.0, (900, 300, 0)),
        llm_turn(p, "plan", "long-r1", 0.1, 100.1, (900, 300, 0)),
        ev("kv", p, 100.11, None, action="pin_created", blocks=20, ttl_s=1.0, tool="lookup"),
        tool_call(p, "lookup", "lookup", 100.11, 100.112),
        *engine_request(p, "long-r2", 100.16, 100.164, 101.0, 200.0, (1200, 300, 900)),
        ev("kv", p, 100.164, None, action="pin_hit", blocks=20),
        llm_turn(p, "answer", "long-r2", 100.16, 200.1, (1200, 300, 900)),
        ev("llm_queued", p, 200.2, "long-r3", request_id="long-r3", prompt_tokens=1500),
        ev("llm_admitted", p, 200.3, "long-r3", 200.2, request_id="long-r3", cached_tokens=0, queued_s=0.1),
        ev("llm_first_token", p, 201.0, "long-r3", request_id="long-r3"),
        ev("llm_queued", ENGINE_PROGRAM, 205.0, "srv-1", request_id="srv-1", prompt_tokens=40),
        *pinned_steps([(1.0, 0), (100.11, 20), (100.164, 0), (210.0, 0)]),
    ]  # fmt: skip


def parked_run_events() -> list[TraceEvent]:
    """Program ``parked``: pinned at 10 s, parked at 20 s, prefetched back at 50 s, its pin expired at 150 s.
    Program ``quiet``: pinned at 30 s, unpinned by its next turn's admission at 40 s without a pin_hit (no
    prefix matched). The counters' blocks_pinned is > 0 exactly over [10, 20], [30, 40] and [50, 150]."""
    return [
        *engine_request("parked", "parked-r1", 1.0, 1.1, 2.0, 10.0, (300, 20, 0)),
        ev("kv", "parked", 10.0, None, action="pin_created", blocks=8, ttl_s=5.0, tool="search"),
        ev("kv", "parked", 20.0, None, action="parked", blocks=8),
        *engine_request("quiet", "quiet-r1", 25.0, 25.1, 26.0, 30.0, (200, 10, 0)),
        ev("kv", "quiet", 30.0, None, action="pin_created", blocks=4, ttl_s=30.0, tool="fetch"),
        *engine_request("quiet", "quiet-r2", 39.0, 40.0, 41.0, 45.0, (220, 10, 0)),
        ev("kv", "parked", 50.0, None, action="prefetched", blocks=8),
        ev("kv", "parked", 150.0, None, action="pin_expired", blocks=8),
        *pinned_steps([(0.5, 0), (10.0, 8), (20.0, 0), (30.0, 4), (40.0, 0), (50.0, 8), (150.0, 0), (160.0, 0)]),
    ]  # fmt: skip


def write_events_run(root: Path, name: str, events: list[TraceEvent]) -> str:
    """A finished ``serve`` run of ``events`` (in time order); its run id."""
    rec = RunRecorder("serve", name, trace_dir=root, meta={"command": "tether serve --model smollm2"})
    rec.update(started=BASE)
    writer = rec.trace()
    for e in sorted(events, key=lambda e: e.ts):
        writer.emit(e)
    rec.end("ok")
    rec.update(ended=max(e.ts for e in events))
    return rec.run_id
