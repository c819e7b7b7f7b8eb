"""The planner's run is one DAG (agents.planner.record): plan -> tasks -> join -> next plan ... -> answer, with a
node for every planned task: the ones the run executes (its own node events) and the ones not run (recorded)."""

from __future__ import annotations

import pytest

from tests.agents.test_planner import planner
from tether.dag import ToolCall
from tether.runtime.executor.errors import ExecutorError
from tether.runtime.tracing import TraceEvent

ROUND0 = (
    "1. number(x=3)\n"
    "2. boom(x=$1)\n"
    "3. add(a=$2, b=1)\n"  # needs $2, which fails: not run
    '4. echo(text="hi")\n'
    "5. join()\n"
    "<END_OF_PLAN>"
)
ROUND1 = "1. number(x=5)\n2. join()\n<END_OF_PLAN>"
REPLIES = [ROUND0, "Thought: $2 failed\nAction: Replan", ROUND1, "Thought: it is 5\nAction: Finish(5)"]


def dag(events: list[TraceEvent], program_id: str) -> dict[str, list[str]]:
    """Each node of the program's DAG and its deps, from its node_added events."""
    return {
        e.attrs["node"]["id"]: e.attrs["node"]["deps"]
        for e in events
        if e.program_id == program_id and e.kind == "node_added"
    }


def outcomes(events: list[TraceEvent], program_id: str) -> dict[str, str]:
    ends = ("node_end", "node_error", "node_skipped", "node_cancelled")
    return {e.node_id: e.kind for e in events if e.program_id == program_id and e.kind in ends}


async def test_a_replanned_run_records_plan_tasks_join_rounds_and_the_answer():
    p, _, trace = planner(REPLIES)
    async with p:
        result = await p.run("q?")
    assert (result.answer, result.replans) == ("5", 1)
    assert dag(trace.events, result.trace_id) == {
        "plan0": [],
        "p0_t1": ["plan0"],
        "p0_t2": ["plan0", "p0_t1"],
        "p0_t3": ["plan0", "p0_t2"],
        "p0_t4": ["plan0"],
        "join0": ["p0_t1", "p0_t2", "p0_t4", "p0_t3"],  # the executed tasks (dependencies), then the recorded
        "plan1": ["join0"],
        "p1_t1": ["plan1"],
        "join1": ["p1_t1"],
        "answer": ["join1"],
    }
    assert outcomes(trace.events, result.trace_id) == {
        "plan0": "node_end",
        "p0_t1": "node_end",
        "p0_t2": "node_error",
        "p0_t3": "node_skipped",
        "p0_t4": "node_end",
        "join0": "node_end",
        "plan1": "node_end",
        "p1_t1": "node_end",
        "join1": "node_end",
        "answer": "node_end",
    }
    by_node = {(e.kind, e.node_id): e for e in trace.events if e.program_id == result.trace_id}
    assert by_node[("node_error", "p0_t2")].attrs["error_type"] == "ToolExecutionError"
    assert by_node[("node_skipped", "p0_t3")].attrs["reason"] == "not run: it needs $2, which failed"
    assert by_node[("node_end", "answer")].attrs["output"] == "5"
    assert by_node[("node_start", "p0_t1")].attrs["deps"] == ["plan0"]
    assert by_node[("node_start", "join0")].attrs["deps"] == ["p0_t1", "p0_t2", "p0_t4", "p0_t3"]
    assert ("node_start", "p0_t3") not in by_node  # it never ran


async def test_a_plan_error_round_is_followed_by_the_next_plan_after_its_tasks():
    bad = "1. number(x=1)\n2. nosuchtool(3)\n"
    p, _, trace = planner([bad, ROUND1, "Thought: ok\nAction: Finish(5)"])
    async with p:
        result = await p.run("q?")
    nodes = dag(trace.events, result.trace_id)
    assert nodes["plan1"] == ["p0_t1"] and "join0" not in nodes
    assert nodes["answer"] == ["join1"]


async def test_record_writes_only_node_events_of_nodes_the_run_does_not_execute():
    p, _, trace = planner([])
    async with p:
        run = p.runtime.start_program("probe")
        run.add_node(ToolCall(id="n1", tool="number", args={"x": 1}))
        run.record("node_added", "t", {"node": {"id": "t", "kind": "tool", "tool": "add", "deps": ["n1"]}})
        with pytest.raises(ExecutorError, match="node events, not 'llm_turn'"):
            run.record("llm_turn", "t", {})
        with pytest.raises(ExecutorError, match="'n1' is executed by the run"):
            run.record("node_end", "n1", {})
        run.seal()
        await run.wait()
    assert dag(trace.events, run.id) == {"n1": [], "t": ["n1"]}
