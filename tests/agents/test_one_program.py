"""One agent run is one program: a planner run (plan, tasks, joiner, replans), a ReAct run and a decorator agent
each hold one ``program_id`` in the trace, their executor graph is connected (plan -> task -> join -> next plan,
llm -> tool -> llm), and the engine learns what each call knows: the planner's hints at submission (turn, calls
left, prefix group) and, when a turn ends, the tool the program then waits for (its pin's ``tool``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.agents.test_planner import TOOLS, planner
from tests.agents.test_planner_trace import REPLIES
from tether.agents.decorator import agent, conversation
from tether.agents.planner import agent as planner_agent
from tether.agents.planner.agent import Planner
from tether.agents.planner.hints import join_outcome, plan_outcome, plan_tools
from tether.agents.react import ReActAgent
from tether.agents.runtime import AgentRuntime
from tether.dag import ToolCall
from tether.dag.errors import ToolArgumentsError
from tether.hints import LLMHints, TurnOutcome
from tether.runtime.executor import LLMRequest, LLMResult, LLMToolCall, ProgramRun, Usage
from tether.runtime.executor.backends.local_engine import LocalEngineBackend
from tether.runtime.executor.backends.turn_readers import TurnReaders, request_reader
from tether.runtime.tracing import MemoryTraceSink
from tether.runtime.tracing.events import ENGINE_PROGRAM
from tether.tools import tool
from tether.tools.durations import ToolDurationStats


def capture_runs(rt: AgentRuntime) -> list[ProgramRun]:
    """Keep every run ``rt.start_program`` makes (the executor forgets a run once it ends)."""
    runs: list[ProgramRun] = []
    start = rt.start_program

    def keep(*args, **kwargs) -> ProgramRun:
        runs.append(start(*args, **kwargs))
        return runs[-1]

    rt.start_program = keep  # type: ignore[method-assign]
    return runs


def edges(run: ProgramRun) -> set[tuple[str, str, str]]:
    return {(u, v, kind) for u, v, kind in run.program.graph.edges(data="kind")}


def programs(trace: MemoryTraceSink) -> set[str]:
    return {e.program_id for e in trace.events} - {ENGINE_PROGRAM}


def literal(text: str) -> str:
    """A grammar whose only sentence is ``text`` (ASCII): the tiny model's reply is forced to it."""
    return f"root ::= {json.dumps(text)}\n"


# -- planner ---------------------------------------------------------------------------------------------------
async def test_a_planner_run_is_one_program_plan_tasks_join_next_plan():
    p, backend, trace = planner(list(REPLIES), max_replans=1)
    async with p:
        runs = capture_runs(p.runtime)
        result = await p.run("q?")
    assert (result.answer, result.replans) == ("5", 1)
    assert programs(trace) == {result.trace_id}  # LLM calls, tool calls, node events: one program
    assert {e.node_id for e in trace.of_kind("tool_call")} == {"p0_t1", "p0_t2", "p0_t4", "p1_t1"}
    (run,) = runs
    assert edges(run) == {
        ("plan0", "p0_t1", "stream"), ("plan0", "p0_t2", "stream"), ("p0_t1", "p0_t2", "order"),
        ("plan0", "p0_t4", "stream"),
        ("p0_t1", "join0", "order"), ("p0_t2", "join0", "order"), ("p0_t4", "join0", "order"),
        ("join0", "plan1", "order"), ("plan1", "p1_t1", "stream"), ("p1_t1", "join1", "order"),
    }  # fmt: skip
    # p0_t3 (its input $2 failed) never ran: it is drawn from the trace only, as the answer after join1
    assert "p0_t3" not in run.program.nodes
    added = {e.node_id: e.attrs["node"]["deps"] for e in trace.of_kind("node_added")}
    assert added["p0_t3"] == ["plan0", "p0_t2"] and added["answer"] == ["join1"]
    # what each call told the backend at submission: turn, calls left (on the last round), prefix group
    hints = [(r.node_id, r.hints.turn, r.hints.remaining_turns, r.hints.last_turn, r.hints.prefix_group)
             for r in backend.requests]  # fmt: skip
    assert hints == [
        ("plan0", 0, None, False, "planner"),
        ("join0", 1, None, False, "joiner"),
        ("plan1", 2, 1, False, "planner"),  # the last round: its joiner follows, nothing else
        ("join1", 3, 0, True, "joiner"),
    ]
    # and what each turn's reply says when it ends (what the local engine's program layer learns)
    said = [r.outcome(text) for r, text in zip(backend.requests, REPLIES, strict=True)]
    assert [o.next_tool for o in said][1:] == [None, "number", None]
    assert said[0].next_tool in {"number", "boom", "add", "echo"}
    assert [o.last_turn for o in said] == [False, False, False, True]


def test_plan_outcome_names_the_plans_tool_predicted_longest():
    stats = ToolDurationStats()
    for _ in range(100):  # enough for each tool's own distribution
        stats.observe("echo", 5.0)
        stats.observe("number", 0.01)
    plan = '1. number(x=1)\n2. echo(text="a")\n3. join()\n<END_OF_PLAN>'
    assert plan_tools(plan, TOOLS) == ["number", "echo"]
    assert plan_outcome(TOOLS, stats)(plan) == TurnOutcome("echo", last_turn=False)
    assert plan_tools("1. number(x=1)\n2. nosuch(3)\n3. echo(text=1)", TOOLS) == [
        "number"
    ]  # up to a bad line
    assert plan_outcome(TOOLS, stats)("Thought: no plan") == TurnOutcome(None, last_turn=False)
    assert join_outcome(final=False)("Thought: t\nAction: Replan") == TurnOutcome(None, last_turn=False)
    assert join_outcome(final=False)("Thought: t\nAction: Finish(3)") == TurnOutcome(None, last_turn=True)
    assert join_outcome(final=True)("Thought: t\nAction: Replan") == TurnOutcome(None, last_turn=True)


async def test_the_engine_sees_the_planners_hints_and_each_turns_tool(monkeypatch):
    """The tiny engine, its replies forced by literal grammars: the requests it got carry the hints, and its
    program layer pins the run's KV after each turn for the tool the reply named."""
    plans = iter(
        ["1. number(x=3)\n2. number(x=4)\n3. join()\n<END_OF_PLAN>", '1. echo(text="hi")\n2. join()\n']
    )
    joins = iter(["Thought: more\nAction: Replan", "Thought: done\nAction: Finish(hi)"])
    monkeypatch.setattr(planner_agent, "joiner_grammar", lambda allow_replan: literal(next(joins)))
    seen: list[LLMHints] = []
    make = LocalEngineBackend.generate_request

    def spy(self, request):
        generate = make(self, request)
        seen.append(generate.hints)
        return generate

    monkeypatch.setattr(LocalEngineBackend, "generate_request", spy)
    trace = MemoryTraceSink()
    p = Planner(TOOLS, model="tiny", trace=trace, max_replans=1, constrained=True, num_kv_blocks=256)
    monkeypatch.setattr(p, "_grammar", lambda: literal(next(plans)))
    async with p:
        result = await p.run("What is it?")
        await p.runtime.backend.engine.check_integrity()
        assert len(p.runtime.backend.readers) == 0  # every reader was used or dropped
    assert (result.answer, result.replans) == ("hi", 1)
    assert [(h.program_id, h.turn, h.remaining_turns, h.last_turn, h.prefix_group) for h in seen] == [
        (result.trace_id, 0, None, False, "planner"),
        (result.trace_id, 1, None, False, "joiner"),
        (result.trace_id, 2, 1, False, "planner"),
        (result.trace_id, 3, 0, True, "joiner"),
    ]
    assert programs(trace) == {result.trace_id}
    kv = [
        (e.attrs["action"], e.attrs.get("tool"))
        for e in trace.of_kind("kv")
        if e.program_id == result.trace_id
    ]
    assert [tool for action, tool in kv if action == "pin_created"] == ["number", None, "echo"]
    assert kv.count(("pin_created", None)) == 1  # the last joiner's turn ended the program: no pin after it


def test_turn_readers_read_a_registered_reply_else_fall_back():
    readers = TurnReaders()
    hinted = LLMHints(next_tools=("search",))
    readers.expect("r1", lambda text: TurnOutcome(text, last_turn=False) if text else None)
    assert readers.outcome(SimpleNamespace(request_id="r1", output_text="add", hints=hinted)) == TurnOutcome(
        "add", False
    )
    seq = SimpleNamespace(request_id="r1", output_text="add", hints=hinted)  # used once: now the hints
    assert readers.outcome(seq) == TurnOutcome("search", False)
    readers.expect("r2", lambda text: 1 / 0)  # a reader's bug falls back, never stops the engine
    assert readers.outcome(SimpleNamespace(request_id="r2", output_text="", hints=hinted)) == TurnOutcome(
        "search", False
    )
    spec = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    read = request_reader([spec], lambda text: TurnOutcome(None, last_turn=True))
    assert read('<tool_call>{"name": "add", "arguments": {}}</tool_call>') == TurnOutcome("add", False)
    assert read("plain answer") == TurnOutcome(None, last_turn=True)


# -- ReAct ------------------------------------------------------------------------------------------------------
@tool
async def plus(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


class ScriptedReplies:
    name = "scripted"

    def __init__(self, replies: list[LLMResult]) -> None:
        self.replies = list(replies)
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        return self.replies.pop(0)

    async def end_program(self, program_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_react_run_is_one_program_llm_tool_llm():
    texts = [
        "Thought: a\nAction: plus(a=1, b=2)",
        "Thought: bad\nAction: ???",
        'Thought: ok\nAction: Finish("3")',
    ]
    backend, trace = ScriptedReplies([LLMResult(t, Usage()) for t in texts]), MemoryTraceSink()
    rt = await AgentRuntime.create([plus], backend=backend, trace=trace)
    runs = capture_runs(rt)
    try:
        result = await ReActAgent([plus], runtime=rt, max_steps=4).run("1 + 2?")
    finally:
        await rt.close()
    assert result.answer == "3"
    assert programs(trace) == {result.trace_id}
    assert edges(runs[0]) == {
        ("llm1", "tool1", "order"),
        ("tool1", "llm2", "order"),
        ("llm2", "llm3", "order"),
    }
    said = [r.outcome(t) for r, t in zip(backend.requests, texts, strict=True)]
    assert said == [TurnOutcome("plus", False), TurnOutcome(None, False), TurnOutcome(None, True)]


@tool
async def toggle(on: bool) -> bool:
    """Flip a switch (its arguments are bounded, so the tiny model's forced call always closes)."""
    return not on


# -- decorator agents -------------------------------------------------------------------------------------------
async def test_a_decorator_conversation_is_one_program_llm_tool_llm():
    call = LLMToolCall("plus", {"a": 1, "b": 2}, "c1")
    backend = ScriptedReplies([LLMResult("", Usage(), tool_calls=(call,)), LLMResult("it is 3", Usage())])
    trace = MemoryTraceSink()
    rt = await AgentRuntime.create([plus], backend=backend, trace=trace)

    @agent
    async def ask() -> str:
        conv = conversation(system="Use the tools.", tools=[plus])
        conv.say("1 + 2?")
        await conv.call_tools()
        return await conv.llm()

    try:
        run = await ask.execute(runtime=rt)
    finally:
        await rt.close()
    assert run.value == "it is 3"
    assert programs(trace) == {run.trace_id}
    assert sorted(run.edges) == [("llm_1", "plus_2", "order"), ("plus_2", "llm_3", "data")]
    assert backend.requests[0].outcome("") == TurnOutcome("plus", False)  # the tool added after the call


async def test_a_decorator_agent_on_the_engine_pins_for_the_tool_its_reply_called():
    trace = MemoryTraceSink()
    rt = await AgentRuntime.create([toggle], model="tiny", num_kv_blocks=128, trace=trace)
    force = {"type": "function", "function": {"name": "toggle"}}

    @agent
    async def ask() -> list:
        conv = conversation(system="Flip switches with the tool. " * 6, tools=[toggle], max_tokens=160)
        return await conv.say("Flip it.", tool_choice=force)

    try:
        run = await ask.execute(runtime=rt)
        await rt.backend.engine.check_integrity()
    finally:
        await rt.close()
    assert run.value[0]["tool"] == "toggle"
    assert programs(trace) == {run.trace_id}
    pins = [e.attrs.get("tool") for e in trace.of_kind("kv") if e.attrs["action"] == "pin_created"]
    assert pins == ["toggle"]  # the engine read the reply's <tool_call> when the turn ended


# -- growing programs: a rejected node is not left behind -------------------------------------------------------
async def test_a_node_that_does_not_validate_is_not_added():
    rt = await AgentRuntime.create([plus], backend=ScriptedReplies([]), trace=MemoryTraceSink())
    try:
        run = rt.start_program("probe")
        with pytest.raises(ToolArgumentsError, match="argument 'a'"):
            run.add_node(ToolCall(id="t1", tool="plus", args={"a": "x", "b": 1}))
        assert "t1" not in run.program.nodes and "t1" not in run.program.graph
        run.add_node(ToolCall(id="t1", tool="plus", args={"a": 1, "b": 1}))  # the id is free again
        with pytest.raises(Exception, match="streamed only from an LLM call"):
            run.add_node(ToolCall(id="t2", tool="plus", args={"a": 1, "b": 1}), streamed_from="t1")
        run.cancel()
    finally:
        await rt.close()
