"""Compiler annotations: topological levels, the critical path with predicted tool durations, and the
scheduler's hints for each LLM call."""

from __future__ import annotations

import textwrap

import pytest

from tether.dag import LLMCall, ToolCall, compile_program, extend, parse_workflow
from tether.dag.compiler import LLMHints
from tether.dag.errors import UnknownReferenceError
from tether.tools import ToolRegistry
from tether.tools.durations import ToolDurationStats

REGISTRY = ToolRegistry()
REGISTRY.load("tests.dag.dag_tools")

SYSTEM = "You are a careful research agent. Cite every source you use."
AGENT = textwrap.dedent(
    f"""\
    inputs: {{q: string}}
    nodes:
      - id: plan
        llm:
          messages:
            - {{role: system, content: "{SYSTEM}"}}
            - {{role: user, content: "Plan a search for ${{inputs.q}}"}}
          max_tokens: 50
      - {{id: search, tool: search, args: {{query: "${{plan.output}}"}}}}
      - {{id: count, tool: count, args: {{text: "${{plan.output}}"}}}}
      - {{id: fetch, tool: fetch, args: {{url: "${{search.output[0].url}}"}}}}
      - id: answer
        llm:
          messages:
            - {{role: system, content: "{SYSTEM}"}}
            - {{role: user, content: "Answer from ${{fetch.output}}"}}
          max_tokens: 100
      - id: side
        llm: {{prompt: "Unrelated ${{count.output}}", max_tokens: 10}}
    """
)


@pytest.fixture
def stats() -> ToolDurationStats:
    s = ToolDurationStats(min_samples=1)
    s.observe_many([("search", 2.0), ("fetch", 5.0), ("count", 0.5)])
    return s


def test_levels_and_order(stats: ToolDurationStats) -> None:
    compiled = compile_program(parse_workflow(AGENT), REGISTRY, stats=stats)
    assert compiled.levels == {"plan": 0, "search": 1, "count": 1, "fetch": 2, "side": 2, "answer": 3}
    assert compiled.num_levels == 4
    pos = {n: i for i, n in enumerate(compiled.order)}
    for u, v in compiled.program.graph.edges:
        assert pos[u] < pos[v]


def test_critical_path_uses_predicted_tool_durations(stats: ToolDurationStats) -> None:
    compiled = compile_program(parse_workflow(AGENT), REGISTRY, stats=stats, llm_seconds_per_token=0.01)
    assert compiled.predicted_s == pytest.approx(
        {"plan": 0.5, "search": 2.0, "count": 0.5, "fetch": 5.0, "answer": 1.0, "side": 0.1}
    )
    assert compiled.critical_path.nodes == ("plan", "search", "fetch", "answer")
    assert compiled.critical_path.seconds == pytest.approx(8.5)


def test_hints_for_each_llm_call(stats: ToolDurationStats) -> None:
    compiled = compile_program(parse_workflow(AGENT), REGISTRY, stats=stats)
    assert compiled.hints == {
        "plan": LLMHints(
            turn=0,
            remaining_turns=1,
            last_turn=False,
            next_tools=("search", "count"),
            prefix_group="prefix-0",
        ),
        "answer": LLMHints(turn=1, remaining_turns=0, last_turn=False, prefix_group="prefix-0"),
        "side": LLMHints(turn=1, remaining_turns=0, last_turn=False),
    }
    assert compiled.hints["plan"].next_tool == "search"  # the longer predicted of the two that follow
    assert compiled.prefix_groups == {"prefix-0": ("answer", "plan")}


def test_last_turn_when_every_other_call_comes_before() -> None:
    program = parse_workflow(
        "nodes:\n"
        "  - {id: a, llm: {prompt: one}}\n"
        "  - {id: t, tool: count, args: {text: '${a.output}'}}\n"
        "  - {id: b, llm: {prompt: 'two ${t.output}'}}\n"
    )
    hints = compile_program(program, REGISTRY).hints
    assert hints["a"] == LLMHints(turn=0, remaining_turns=1, last_turn=False, next_tools=("count",))
    assert hints["b"] == LLMHints(turn=1, remaining_turns=0, last_turn=True)


def test_a_program_that_may_grow_knows_no_last_turn() -> None:
    program = parse_workflow("nodes:\n  - {id: a, llm: {prompt: one}}\n")
    program.may_grow = True
    assert compile_program(program, REGISTRY).hints["a"] == LLMHints(
        turn=0, remaining_turns=None, last_turn=False
    )


def test_extend_adds_a_validated_node() -> None:
    program = parse_workflow("nodes:\n  - {id: a, llm: {prompt: one}}\n")
    program.may_grow = True
    compiled = compile_program(program, REGISTRY)
    extend(compiled, ToolCall(id="t", tool="count", args={"text": "${a.output}"}))
    extend(compiled, LLMCall(id="b", prompt="two ${t.output}"))
    assert compiled.order == ["a", "t", "b"]
    assert compiled.levels == {"a": 0, "t": 1, "b": 2}
    assert compiled.hints["b"] == LLMHints(turn=1)
    with pytest.raises(UnknownReferenceError, match="node 'c': reference later: a node added at run time"):
        extend(compiled, ToolCall(id="c", tool="count", args={"text": "${later.output}"}))
    assert "c" not in compiled.program
