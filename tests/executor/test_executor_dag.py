"""The executor runs nodes as soon as their inputs are ready: a diamond of sleeping tools takes its critical
path, typed values flow between nodes, many programs run at once, programs grow while they run."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from tests.executor import executor_tools
from tests.executor.conftest import REGISTRY, ScriptedLLM, compile_yaml
from tether.dag import LLMCall, ToolCall
from tether.runtime.executor import Executor, ProgramRun
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner

DIAMOND = """\
    nodes:
      - {id: a, tool: nap, args: {label: a, seconds: 0.1}}
      - {id: b, tool: nap, args: {label: "${a.output}b", seconds: 0.3}}
      - {id: c, tool: snooze, args: {label: "${a.output}c", seconds: 0.3}}
      - {id: d, tool: nap, args: {label: "${b.output}+${c.output}", seconds: 0.1}}
    outputs: {d: "${d.output}"}
    """


def spans(trace: MemoryTraceSink) -> dict[str, tuple[float, float]]:
    """node -> (start, end) wall-clock seconds, from its node_start and node_end events."""
    start = {e.node_id: e.ts for e in trace.of_kind("node_start")}
    return {e.node_id: (start[e.node_id], e.ts) for e in trace.of_kind("node_end")}


async def test_a_diamond_takes_its_critical_path_not_the_sum() -> None:
    trace = MemoryTraceSink()
    executor = Executor(LocalToolRunner(REGISTRY), trace=trace)
    began = time.perf_counter()
    result = await executor.run(compile_yaml(DIAMOND), program_id="diamond")
    elapsed = time.perf_counter() - began
    assert result.outputs == {"d": "ab+ac"}
    assert result.node_outputs == {"a": "a", "b": "ab", "c": "ac", "d": "ab+ac"}
    s = spans(trace)
    assert s["b"][0] >= s["a"][1] and s["c"][0] >= s["a"][1]  # after their input
    assert s["b"][0] < s["c"][1] and s["c"][0] < s["b"][1]  # b and c overlap
    assert s["d"][0] >= max(s["b"][1], s["c"][1])
    assert elapsed < 0.8  # the sum of the sleeps; the critical path is 0.5 s


async def test_a_node_starts_when_its_own_inputs_are_ready_not_its_level() -> None:
    # level 1 holds a slow and a fast node; the fast node's dependent must not wait for the slow one
    trace = MemoryTraceSink()
    compiled = compile_yaml(
        """\
        nodes:
          - {id: root, tool: nap, args: {label: r, seconds: 0}}
          - {id: slow, tool: nap, args: {label: "${root.output}", seconds: 0.4}}
          - {id: fast, tool: nap, args: {label: "${root.output}", seconds: 0}}
          - {id: after_fast, tool: nap, args: {label: "${fast.output}", seconds: 0}}
        """
    )
    await Executor(LocalToolRunner(REGISTRY), trace=trace).run(compiled)
    s = spans(trace)
    assert s["after_fast"][1] < s["slow"][1]


async def test_typed_values_flow_between_nodes() -> None:
    compiled = compile_yaml(
        """\
        inputs:
          title: string
          pages: {type: array, default: [1, 2, 3]}
        nodes:
          - {id: doc, tool: make_doc, args: {title: "${inputs.title}", words: 120}}
          - id: describe
            tool: describe
            args: {doc: "${doc.output}", pages: "${inputs.pages}", note: "words=${doc.output.words} doc=${doc.output}"}
        outputs:
          words: ${doc.output.words}
          doc: ${doc.output}
          text: ${describe.output}
        """
    )
    result = await Executor(LocalToolRunner(REGISTRY)).run(compiled, {"title": "KV"})
    doc, pages, note = executor_tools.RECEIVED[0]
    assert isinstance(doc, executor_tools.Doc) and doc == executor_tools.Doc(title="KV", words=120)
    assert pages == [1, 2, 3]
    assert note == 'words=120 doc={"title":"KV","words":120}'
    assert result.outputs["words"] == 120 and isinstance(result.outputs["words"], int)
    assert result.outputs["doc"] is result.node_outputs["doc"]
    assert result.outputs["text"] == "KV:120:6"


class Plan(BaseModel):
    steps: list[str]
    urgent: bool


async def test_llm_outputs_parse_into_their_schema() -> None:
    compiled = compile_yaml(
        """\
        nodes:
          - id: plan
            llm:
              prompt: plan
              output:
                type: object
                properties: {steps: {type: array, items: {type: string}}, urgent: {type: boolean}}
                required: [steps, urgent]
          - {id: first, tool: nap, args: {label: "${plan.output.steps[1]}", seconds: 0}}
          - id: reply
            llm:
              messages: [{role: user, content: "Done ${first.output}; urgent=${plan.output.urgent}"}]
        outputs: {plan: "${plan.output}", reply: "${reply.output}"}
        """
    )
    llm = ScriptedLLM(
        {
            "plan": '```json\n{"steps": ["look", "fetch"], "urgent": true}\n```',
            "reply": lambda r: r.messages[0]["content"],
        }
    )
    result = await Executor(LocalToolRunner(REGISTRY), llm).run(compiled, program_id="p1")
    plan = result.outputs["plan"]
    assert plan.model_dump() == {"steps": ["look", "fetch"], "urgent": True}
    assert result.outputs["reply"] == "Done fetch; urgent=true"
    first, second = llm.requests
    assert (first.node_id, first.prompt, first.messages) == ("plan", "plan", None)
    assert first.output_schema["required"] == ["steps", "urgent"]
    assert (second.hints.turn, second.hints.last_turn, first.hints.next_tool) == (1, True, "nap")
    assert llm.ended == ["p1"]  # the program is released when it ends


async def test_many_programs_run_concurrently() -> None:
    compiled = compile_yaml(
        """\
        inputs: {who: string}
        nodes:
          - {id: hello, tool: nap, args: {label: "hello ${inputs.who}", seconds: 0.2}}
        outputs: {greeting: "${hello.output}"}
        """
    )
    trace = MemoryTraceSink()
    executor = Executor(LocalToolRunner(REGISTRY), trace=trace)
    runs = [executor.start(compiled, {"who": f"p{i}"}, program_id=f"p{i}") for i in range(20)]
    assert len(executor.runs) == 20
    results = await asyncio.gather(*(r.wait() for r in runs))
    assert [r.outputs["greeting"] for r in results] == [f"hello p{i}" for i in range(20)]
    starts = sorted(e.ts for e in trace.of_kind("node_start"))
    ends = sorted(e.ts for e in trace.of_kind("node_end"))
    assert starts[-1] < ends[0]  # every program's node started before any finished
    assert executor.runs == {}


async def test_a_program_grows_while_it_runs() -> None:
    """A ReAct loop: each LLM answer either calls a tool (then another turn is appended) or finishes."""
    compiled = compile_yaml("nodes:\n  - {id: think0, llm: {prompt: 'Question: capital of France?'}}\n")
    compiled.program.may_grow = True
    answers = iter(["search Paris", "search France", "final Paris"])
    llm = ScriptedLLM({f"think{i}": lambda r: next(answers) for i in range(3)})

    async def react(run: ProgramRun, node_id: str, value: object) -> None:
        if not node_id.startswith("think"):
            return
        turn = int(node_id.removeprefix("think"))
        action, _, arg = str(value).partition(" ")
        if action == "search":
            run.add_node(ToolCall(id=f"act{turn}", tool="nap", args={"label": f"found {arg}", "seconds": 0}))
            prompt = f"${{think{turn}.output}} -> ${{act{turn}.output}}"
            run.add_node(LLMCall(id=f"think{turn + 1}", prompt=prompt))

    result = await Executor(LocalToolRunner(REGISTRY), llm).run(compiled, on_node_done=react)
    assert result.node_outputs == {
        "think0": "search Paris",
        "act0": "found Paris",
        "think1": "search France",
        "act1": "found France",
        "think2": "final Paris",
    }
    assert [r.prompt for r in llm.requests[1:]] == [
        "search Paris -> found Paris",
        "search France -> found France",
    ]
    assert [r.hints.turn for r in llm.requests] == [0, 1, 2]
    assert compiled.order == ["think0", "act0", "think1", "act1", "think2"]


async def test_an_empty_output_map_and_no_inputs() -> None:
    result = await Executor(LocalToolRunner(REGISTRY)).run(compile_yaml("nodes:\n  - {id: n, tool: noop}\n"))
    assert result.outputs == {} and result.node_outputs == {"n": None}
