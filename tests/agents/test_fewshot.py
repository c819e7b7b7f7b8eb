"""Few-shot examples (tether.agents.fewshot, examples/agent_examples.py): they parse and pass the agents'
grammars, their calls fit the tools' schemas and show what the tools really return, they are not the benchmark's
questions, and they reach the prompts in order, as LLMCompiler lays them out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import jsonschema
import pytest

import examples.agent_tools as agent_tools
from bench.agent_questions import MAX_K, MIN_K, TEMPLATES, make_questions
from examples.agent_examples import PLAN_EXAMPLES, REACT_EXAMPLES
from examples.agent_tools import AGENT_TOOLS
from tether.agents.fewshot import FewShotError, PlanExample, ReActExample, ReActStep
from tether.agents.planner import parse_plan, plan_grammar, resolve_args
from tether.agents.planner.agent import Planner
from tether.agents.planner.prompts import (
    JOINER_EXAMPLE_ASSISTANT,
    JOINER_EXAMPLE_USER,
    planner_system,
    render_value,
)
from tether.agents.react import ReActAgent, observation_text, system_prompt
from tether.agents.react_grammar import parse_turn, react_grammar, tool_specs
from tether.agents.runtime import AgentRuntime
from tether.runtime.executor import LLMDelta, LLMRequest, LLMResult, Usage
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import tool

TOOLS = {t.name: t for t in AGENT_TOOLS}
SPECS = tool_specs(AGENT_TOOLS)
JOINER_QUESTION = JOINER_EXAMPLE_USER.split("\n", 1)[0].removeprefix("Question: ")
JOINER_PLAN = JOINER_EXAMPLE_USER.split("\n", 1)[1].split("\nObservation 1:")[0]


@pytest.fixture
def no_latency(monkeypatch):
    monkeypatch.setattr(agent_tools, "TOOL_LATENCY", "none")


def test_the_fixed_sets_have_three_to_five_examples_each():
    assert 3 <= len(PLAN_EXAMPLES) <= 5 and 3 <= len(REACT_EXAMPLES) <= 5
    assert all(isinstance(e, PlanExample) for e in PLAN_EXAMPLES)
    assert all(isinstance(e, ReActExample) for e in REACT_EXAMPLES)


# -- parsing and grammars -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("plan", [e.plan for e in PLAN_EXAMPLES] + [JOINER_PLAN])
def test_every_example_plan_parses_against_the_example_tools(plan):
    tasks = parse_plan(plan, AGENT_TOOLS)
    assert tasks[-1].is_join and [t.idx for t in tasks] == list(range(1, len(tasks) + 1))
    assert all(t.tool in TOOLS for t in tasks[:-1])


def test_every_example_plan_is_admitted_by_the_planners_grammar():
    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string as accepts

    planner = Planner(AGENT_TOOLS, model=None, examples=PLAN_EXAMPLES)  # its default limits
    grammar = plan_grammar(
        AGENT_TOOLS, max_tasks=planner.max_tasks, max_string_length=planner.max_string_length
    )
    xgr.Grammar.from_ebnf(grammar)
    for plan in [e.plan for e in PLAN_EXAMPLES] + [JOINER_PLAN]:
        assert accepts(grammar, plan), plan
    assert not accepts(grammar, PLAN_EXAMPLES[0].plan.replace("lookup(", "lookups("))  # the check can fail


def test_every_react_step_parses_and_the_last_one_finishes():
    for ex in REACT_EXAMPLES:
        turns = [parse_turn(s.turn, SPECS) for s in ex.steps]
        assert [t.is_finish for t in turns] == [False] * (len(turns) - 1) + [True]
        assert all(t.tool in TOOLS for t in turns[:-1])


def test_every_react_step_is_admitted_by_reacts_grammars():
    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string as accepts

    turn, act = react_grammar(AGENT_TOOLS), react_grammar(AGENT_TOOLS, allow_finish=False)
    finish = react_grammar((), finish_only=True)
    for g in (turn, act, finish):
        xgr.Grammar.from_ebnf(g)
    for ex in REACT_EXAMPLES:
        *calls, last = ex.steps
        for step in calls:
            assert accepts(turn, step.turn) and accepts(act, step.turn), step.turn
        assert accepts(turn, last.turn) and accepts(finish, last.turn), last.turn
        assert not accepts(act, last.turn)


# -- the tools, for real --------------------------------------------------------------------------------------------
async def _call(name: str, args: dict) -> object:
    tool_ = TOOLS[name]
    jsonschema.validate(args, tool_.input_schema())  # raises on an unknown or ill-typed argument
    return await tool_.invoke(args)


async def _run_plan(plan: str) -> dict[int, object]:
    """Every task of ``plan`` called for real, in order, its references resolved: the observations."""
    observations: dict[int, object] = {}
    for task in parse_plan(plan, AGENT_TOOLS):
        if task.is_join:
            break
        args, kwargs = resolve_args(task, observations)
        assert args == ()  # the examples write keyword arguments only
        observations[task.idx] = await _call(task.tool, kwargs)
    return observations


@pytest.mark.usefixtures("no_latency")
async def test_every_example_plan_runs_with_valid_arguments():
    observations = [await _run_plan(e.plan) for e in PLAN_EXAMPLES]
    assert [len(o) for o in observations] == [3, 2, 3, 2]
    assert observations[0][3] == pytest.approx(4397073 / 696.0)
    assert observations[1][2] == pytest.approx(449.474)
    assert observations[2][3] == 79.0 and observations[3][2] == 1865


@pytest.mark.usefixtures("no_latency")
async def test_the_joiner_example_shows_the_real_observations():
    observations = await _run_plan(JOINER_PLAN)
    shown = "\n".join(f"Observation {i}: {render_value(v)}" for i, v in sorted(observations.items()))
    assert JOINER_EXAMPLE_USER.endswith("<END_OF_PLAN>\n" + shown)
    assert JOINER_EXAMPLE_ASSISTANT.endswith(f"Action: Finish({int(observations[3])})")


@pytest.mark.usefixtures("no_latency")
async def test_every_react_observation_is_what_the_tool_returns():
    for ex in REACT_EXAMPLES:
        for step in ex.steps[:-1]:
            turn = parse_turn(step.turn, SPECS)
            assert turn.tool is not None
            value = await _call(turn.tool, turn.args)
            assert observation_text(value) == step.observation, step.action


async def test_a_schema_violation_is_caught():
    with pytest.raises(jsonschema.ValidationError):
        await _call("lookup", {"table": "cities", "key": 3, "field": "population"})


# -- not the benchmark's questions ----------------------------------------------------------------------------------
def _example_questions() -> list[str]:
    return [e.question for e in PLAN_EXAMPLES] + [e.question for e in REACT_EXAMPLES] + [JOINER_QUESTION]


def test_no_example_question_is_a_benchmark_question():
    mine = {q.lower() for q in _example_questions()}
    bench = {
        q.text.lower()
        for k in range(MIN_K, MAX_K + 1)
        for seed in range(5)
        for q in make_questions(k, 50, seed)
    }
    assert len(bench) > 1000 and not mine & bench


@pytest.mark.parametrize("question", _example_questions())
def test_no_example_question_fits_a_benchmark_template(question):
    for tpl in TEMPLATES:
        prefix, suffix = tpl.text.split("{names}")
        pattern = re.escape(prefix) + ".+" + re.escape(suffix)
        assert not re.fullmatch(pattern, question, re.IGNORECASE), tpl.text
        assert not question.lower().startswith(prefix.lower()), tpl.text


def test_the_template_check_catches_an_instance():
    prefix, suffix = TEMPLATES[0].text.split("{names}")
    assert re.fullmatch(
        re.escape(prefix) + ".+" + re.escape(suffix), TEMPLATES[0].text.format(names="A and B")
    )


# -- the prompts ----------------------------------------------------------------------------------------------------
def test_planner_prompt_lists_the_examples_in_order_after_the_rules():
    bare = planner_system(AGENT_TOOLS)
    shots = "\n\n".join(f"Question: {e.question}\n{e.plan}\n###" for e in PLAN_EXAMPLES)
    assert planner_system(AGENT_TOOLS, PLAN_EXAMPLES) == f"{bare}\n\nHere are some examples:\n\n{shots}"
    assert bare.endswith("- Only use the actions above.") and "###" not in bare
    text = planner_system(AGENT_TOOLS, PLAN_EXAMPLES)
    assert text.index("6. join(): collects") < text.index("Rules:") < text.index("Here are some examples:")
    assert text.count("\n###\n\nQuestion: ") == len(PLAN_EXAMPLES) - 1 and text.endswith("<END_OF_PLAN>\n###")


def test_react_prompt_lists_the_traces_in_order_after_the_format():
    bare = system_prompt(SPECS)
    head = bare[: bare.index("Example of the format:")]
    traces = []
    for ex in REACT_EXAMPLES:
        lines = [f"Question: {ex.question}"]
        for s in ex.steps:
            lines += [f"Thought: {s.thought}", f"Action: {s.action}"]
            lines += [f"Observation: {s.observation}"] if s.observation is not None else []
        traces.append("\n".join(lines))
    expected = head + "Here are some examples:\n\n" + "\n\n".join(traces)
    assert system_prompt(SPECS, REACT_EXAMPLES) == expected
    assert bare.endswith('Action: Finish("the final answer, with its number or name")')


class ScriptedBackend:
    """Replies with scripted texts in order (one stream delta each) and keeps the requests."""

    name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.requests = list(replies), []

    def _next(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        text = self.replies.pop(0)
        return LLMResult(text, Usage(prompt_tokens=1, completion_tokens=1))

    async def complete(self, request: LLMRequest) -> LLMResult:
        return self._next(request)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        result = self._next(request)
        yield LLMDelta(result.text)
        yield LLMDelta("", result)

    async def end_program(self, program_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


def _system(request: LLMRequest) -> str:
    assert request.messages is not None and request.messages[0]["role"] == "system"
    return request.messages[0]["content"]


async def test_the_agents_send_the_examples_to_the_model():
    backend = ScriptedBackend(
        ["1. join()\n<END_OF_PLAN>", "Thought: done\nAction: Finish(1)", "Thought: x\nAction: Finish(1)"]
    )
    rt = await AgentRuntime.create(AGENT_TOOLS, backend=backend, trace=MemoryTraceSink())
    async with Planner(AGENT_TOOLS, runtime=rt, examples=PLAN_EXAMPLES) as planner:
        await planner.run("What is 1?")
    async with ReActAgent(AGENT_TOOLS, runtime=rt, examples=REACT_EXAMPLES) as react:
        await react.run("What is 1?")
    await rt.close()
    plan_call, _, react_call = backend.requests
    assert _system(plan_call) == planner_system(AGENT_TOOLS, PLAN_EXAMPLES)  # "${1}" unescaped, as written
    assert "${1} / ${2}" in _system(plan_call)
    assert _system(react_call) == system_prompt(SPECS, REACT_EXAMPLES)


async def test_the_benchmark_gives_both_agents_the_examples():
    from tether.agents.bench import build_agents

    agents, rt, notes = await build_agents(None, backend=ScriptedBackend([]), trace=MemoryTraceSink())
    try:
        assert notes == [] and set(agents) == {"planner", "react"}
        assert agents["planner"].examples == PLAN_EXAMPLES and agents["react"].examples == REACT_EXAMPLES
        assert agents["react"].system == system_prompt(SPECS, REACT_EXAMPLES)
    finally:
        await rt.close()


# -- defaults and errors ------------------------------------------------------------------------------------------
@tool
def double(x: int) -> int:
    """Double x."""
    return 2 * x


def test_by_default_no_examples():
    planner, react = Planner([double], model=None), ReActAgent([double], model=None)
    assert planner.examples == () and react.examples == ()
    assert "Here are some examples" not in planner_system([double])
    assert react.system == system_prompt(tool_specs([double]))
    assert "Example of the format:\nThought: I need the first fact.\nAction: double(x=1)" in react.system


def test_examples_for_other_tools_are_rejected():
    with pytest.raises(FewShotError, match=r"^examples\[0\]\.plan: line 2, task 1: unknown tool 'lookup'"):
        Planner([double], model=None, examples=PLAN_EXAMPLES)
    with pytest.raises(FewShotError, match=r"^examples\[0\]\.steps\[0\]: unknown tool 'lookup'"):
        ReActAgent([double], model=None, examples=REACT_EXAMPLES)
    with pytest.raises(FewShotError, match=r"^examples\[1\]: expected a PlanExample, got tuple"):
        Planner([double], model=None, examples=[PlanExample("q", "1. join()\n<END_OF_PLAN>"), ("q", "p")])


def test_malformed_examples_name_the_field():
    with pytest.raises(FewShotError, match=r"^plan: must end with <END_OF_PLAN>"):
        PlanExample("q", "1. double(x=1)\n2. join()")
    with pytest.raises(FewShotError, match=r"^question: must be one non-empty line"):
        PlanExample("a\nb", "1. join()\n<END_OF_PLAN>")
    with pytest.raises(FewShotError, match=r"^examples\[0\]\.plan: line 2: <END_OF_PLAN> before join\(\)$"):
        Planner([double], model=None, examples=[PlanExample("q", "1. double(x=1)\n<END_OF_PLAN>")])
    with pytest.raises(FewShotError, match=r"^steps\[1\]: needs no observation \(it is the Finish\)"):
        ReActExample("q", (ReActStep("t", "double(x=1)", "2"), ReActStep("t", "Finish(2)", "2")))
    with pytest.raises(FewShotError, match=r"^steps\[0\]: needs an observation"):
        ReActExample("q", (ReActStep("t", "double(x=1)"), ReActStep("t", "Finish(2)")))
    early = ReActExample("q", (ReActStep("t", "Finish(2)", "2"), ReActStep("t", "double(x=1)")))
    with pytest.raises(FewShotError, match=r"^examples\[0\]\.steps\[0\]: Finish must be the last step"):
        ReActAgent([double], model=None, examples=[early])
