"""The executor's trace events (docs/tracing.md): the DAG in ``program_start``, nodes added at run time, spans
with their start on one clock, OpenTelemetry GenAI attributes, and one ``tool_call`` per attempt."""

from __future__ import annotations

import asyncio

from tests.executor.conftest import REGISTRY, ScriptedLLM, compile_yaml
from tether.dag import LLMCall, Program, ToolCall, compile_program
from tether.runtime.executor import Executor
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner

FANOUT = """\
name: fanout
nodes:
  - {id: plan, llm: {prompt: "plan it"}}
  - {id: a, tool: nap, args: {label: "${plan.output}", seconds: 0.05}}
  - {id: b, tool: nap, args: {label: b, seconds: 0.05}, depends: [plan]}
  - {id: join, tool: nap, args: {label: "${a.output}+${b.output}", seconds: 0}}
"""


async def test_program_start_carries_the_dag_and_spans_carry_their_start() -> None:
    trace = MemoryTraceSink()
    llm = ScriptedLLM({"plan": "go"})
    result = await Executor(LocalToolRunner(REGISTRY), llm, trace=trace).run(
        compile_yaml(FANOUT), program_id="f1"
    )
    assert result.node_outputs["join"] == "go+b"
    (start,) = trace.of_kind("program_start")
    nodes = {n["id"]: n for n in start.attrs["nodes"]}
    assert nodes["plan"] == {"id": "plan", "kind": "llm", "tool": None, "deps": []}
    assert nodes["join"] == {"id": "join", "kind": "tool", "tool": "nap", "deps": ["a", "b"]}
    assert sorted(map(tuple, start.attrs["edges"])) == [
        ("a", "join"),
        ("b", "join"),
        ("plan", "a"),
        ("plan", "b"),
    ]
    assert (
        start.attrs["gen_ai.operation.name"] == "invoke_agent"
        and start.attrs["gen_ai.conversation.id"] == "f1"
    )
    (turn,) = trace.of_kind("llm_turn")
    assert turn.attrs["gen_ai.operation.name"] == "chat"
    assert (turn.attrs["gen_ai.usage.input_tokens"], turn.attrs["gen_ai.usage.cache_read.input_tokens"]) == (
        7,
        0,
    )
    assert turn.attrs["gen_ai.input.messages"] == "plan it" and turn.attrs["gen_ai.output.text"] == "go"
    calls = trace.of_kind("tool_call")
    assert sorted(e.attrs["gen_ai.tool.call.id"] for e in calls) == ["f1/a#1", "f1/b#1", "f1/join#1"]
    assert {e.attrs["gen_ai.tool.name"] for e in calls} == {"nap"} and {e.attrs["worker"] for e in calls} == {
        "local"
    }
    spans = [e for e in trace.events if e.kind in ("llm_turn", "tool_call", "node_end", "program_end")]
    assert all(e.start is not None and e.start <= e.ts for e in spans)
    a, b = (next(e for e in calls if e.node_id == n) for n in ("a", "b"))
    assert a.start < b.ts and b.start < a.ts  # the two 0.05 s naps ran at the same time
    nodes_done = trace.of_kind("node_end")
    assert {e.attrs["category"] for e in nodes_done} == {"node"} and len(nodes_done) == 4
    (end,) = trace.of_kind("program_end")
    assert end.start <= turn.start and end.ts >= max(e.ts for e in calls)


async def test_nodes_added_at_run_time_are_traced_with_their_deps() -> None:
    trace = MemoryTraceSink()
    compiled = compile_program(Program("agent", may_grow=True), REGISTRY)
    run = Executor(LocalToolRunner(REGISTRY), ScriptedLLM({"think": "x"}), trace=trace).start(
        compiled, program_id="g1", hold=True
    )
    run.add_node(LLMCall(id="think", prompt="hi"))
    run.add_node(ToolCall(id="act", tool="nap", args={"label": "${think.output}", "seconds": 0}))
    await asyncio.wait_for(run.node_future("act"), 5)
    run.seal()
    await run.wait()
    added = [(e.node_id, e.attrs["node"]) for e in trace.of_kind("node_added")]
    assert added == [
        ("think", {"id": "think", "kind": "llm", "tool": None, "deps": []}),
        ("act", {"id": "act", "kind": "tool", "tool": "nap", "deps": ["think"]}),
    ]
    assert trace.of_kind("program_start")[0].attrs["nodes"] == []
