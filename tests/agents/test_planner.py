"""The LLMCompiler planner (agents.planner.agent) on a scripted backend, and once end to end on SmolLM2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tether.agents.planner import format_plan, parse_plan, plan_grammar
from tether.agents.planner.agent import Planner
from tether.agents.planner.joiner import parse_joiner
from tether.agents.planner.prompts import joiner_grammar
from tether.agents.result import LLMUsage
from tether.runtime.executor import LLMDelta, LLMRequest, LLMResult, Usage
from tether.runtime.tracing import MemoryTraceSink
from tether.tools.tool import Tool

CALLS: list[tuple[str, float, dict]] = []


async def number(x: int) -> int:
    """Return x."""
    CALLS.append(("number", time.perf_counter(), {"x": x}))
    await asyncio.sleep(0.01)
    return x


async def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(("add", time.perf_counter(), {"a": a, "b": b}))
    return a + b


async def echo(text: str) -> str:
    """Echo the text."""
    CALLS.append(("echo", time.perf_counter(), {"text": text}))
    return text


async def boom(x: int) -> int:
    """Always fails."""
    CALLS.append(("boom", time.perf_counter(), {"x": x}))
    raise ValueError(f"boom {x}")


TOOLS = [Tool(number), Tool(add), Tool(echo), Tool(boom)]


class ScriptedBackend:
    """Replies with scripted texts in order, streamed line by line with a pause before each line. Each reply's
    result has ``prompt_tokens = 100 + call number`` and ``completion_tokens = len(text)``."""

    name = "scripted"

    def __init__(self, replies: list[str], pause: float = 0.05) -> None:
        self.replies = list(replies)
        self.pause = pause
        self.requests: list[LLMRequest] = []
        self.stream_ends: list[float] = []

    def _next(self, request: LLMRequest) -> tuple[str, LLMResult]:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"no scripted reply left for {request.node_id}")
        text = self.replies.pop(0)
        return text, LLMResult(text, Usage(prompt_tokens=100 + len(self.requests), completion_tokens=len(text)))

    async def complete(self, request: LLMRequest) -> LLMResult:
        return self._next(request)[1]

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        text, result = self._next(request)
        for line in text.splitlines(keepends=True):
            await asyncio.sleep(self.pause)
            yield LLMDelta(line)
        self.stream_ends.append(time.perf_counter())
        yield LLMDelta("", result)

    async def end_program(self, program_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


def user_text(request: LLMRequest) -> str:
    assert request.messages is not None
    return request.messages[-1]["content"]


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def planner(replies: list[str], **kw) -> tuple[Planner, ScriptedBackend, MemoryTraceSink]:
    backend = ScriptedBackend(replies)
    trace = MemoryTraceSink()
    return Planner(TOOLS, model=None, backend=backend, trace=trace, **kw), backend, trace


PLAN_TYPED = (
    "Thought: get three\n"
    "1. number(x=3)\n"
    "2. add(a=$1, b=4)\n"
    '3. echo(text="got ${2} from $1")\n'
    "4. join()\n"
    "<END_OF_PLAN>"
)


async def test_streaming_dispatch_typed_deps_and_finish():
    p, backend, trace = planner([PLAN_TYPED, "Thought: it is 7\nAction: Finish(7)"])
    async with p:
        result = await p.run("What is 3 + 4?")
    # the first task started while the planner was still streaming (three more lines to come)
    first_start = CALLS[0][1]
    assert CALLS[0][0] == "number"
    assert first_start < backend.stream_ends[0] - 2 * backend.pause
    # deps substituted with their types; strings get the text form
    assert CALLS[1] == ("add", CALLS[1][1], {"a": 3, "b": 4})
    assert CALLS[2][2] == {"text": "got 7 from 3"}
    assert result.answer == "7"
    assert result.plans == [parse_plan(PLAN_TYPED, TOOLS)]
    assert [(o.task, o.tool, o.args, o.value, o.error) for o in result.observations] == [
        (1, "number", {"x": 3}, 3, None),
        (2, "add", {"a": 3, "b": 4}, 7, None),
        (3, "echo", {"text": "got 7 from 3"}, "got 7 from 3", None),
    ]
    assert type(result.observations[1].value) is int
    assert all(o.seconds > 0 for o in result.observations)
    assert [(c.role, c.prompt_tokens, c.completion_tokens) for c in result.llm_calls] == [
        ("planner", 101, len(PLAN_TYPED)),
        ("joiner", 102, len("Thought: it is 7\nAction: Finish(7)")),
    ]
    assert all(isinstance(c, LLMUsage) and c.seconds > 0 for c in result.llm_calls)
    assert result.replans == 0
    assert result.trace_id.startswith("planner-")
    assert result.seconds > 0
    # unconstrained backend: no grammar sent
    assert [r.grammar for r in backend.requests] == [None, None]
    # the joiner saw the plan and typed observations rendered as JSON
    joiner_prompt = user_text(backend.requests[1])
    assert "Observation 2: 7" in joiner_prompt and 'Observation 3: "got 7 from 3"' in joiner_prompt
    # one program: the LLM calls and the tasks' tool calls are nodes of the planner's run
    assert {e.program_id for e in trace.of_kind("program_start")} == {result.trace_id}
    assert [e.node_id for e in trace.of_kind("llm_turn")] == ["plan0", "join0"]
    assert [(e.program_id, e.node_id) for e in trace.of_kind("tool_call")] == [
        (result.trace_id, f"p0_t{i}") for i in (1, 2, 3)
    ]


async def test_replan_sees_previous_plan_and_observations():
    plan1 = "1. number(x=5)\n2. join()\n<END_OF_PLAN>"
    plan2 = "1. add(a=5, b=1)\n2. join()\n<END_OF_PLAN>"
    p, backend, _ = planner(
        [plan1, "Thought: need one more\nAction: Replan", plan2, "Thought: done\nAction: Finish(6 (six))"]
    )
    async with p:
        result = await p.run("q?")
    assert result.answer == "6 (six)"
    assert result.replans == 1
    assert result.plans == [parse_plan(plan1), parse_plan(plan2)]
    second = user_text(backend.requests[2])
    assert backend.requests[2].node_id == "plan1"
    assert format_plan(parse_plan(plan1)) in second
    assert "Observation 1: 5" in second and "Thought: need one more" in second
    assert [c.role for c in result.llm_calls] == ["planner", "joiner", "planner", "joiner"]
    assert [(o.task, o.value) for o in result.observations] == [(1, 5), (1, 6)]


async def test_max_replans_then_the_last_joiner_must_finish():
    plan = "1. number(x=1)\n2. join()\n<END_OF_PLAN>"
    replan = "Thought: unsure\nAction: Replan"
    p, backend, _ = planner([plan, replan, plan, "Thought: still unsure\nAction: Replan"], max_replans=1)
    async with p:
        result = await p.run("q?")
    assert len(backend.requests) == 4 and not backend.replies
    assert result.replans == 1
    assert len(result.plans) == 2
    assert "last round" in user_text(backend.requests[3])
    assert "last round" not in user_text(backend.requests[1])
    # an unconstrained joiner that still says Replan: the answer is its thought
    assert result.answer == "still unsure"


async def test_constrained_requests_carry_the_grammars():
    plan = "1. number(x=2)\n2. join()\n<END_OF_PLAN>"
    p, backend, _ = planner(
        [plan, "Thought: a\nAction: Replan", plan, "Thought: b\nAction: Finish(2)"],
        constrained=True,
        max_replans=1,
        max_tasks=3,
    )
    async with p:
        result = await p.run("q?")
    assert result.answer == "2"
    grammars = [r.grammar for r in backend.requests]
    assert grammars == [
        plan_grammar(TOOLS, max_tasks=3, max_string_length=80),
        joiner_grammar(allow_replan=True),
        plan_grammar(TOOLS, max_tasks=3, max_string_length=80),
        joiner_grammar(allow_replan=False),
    ]
    assert "Replan" not in joiner_grammar(allow_replan=False)


async def test_malformed_plan_is_fed_back_to_replanning():
    bad = "1. number(x=1)\n2. nosuch(y=2)\n3. join()\n<END_OF_PLAN>"
    good = "1. number(x=9)\n2. join()\n<END_OF_PLAN>"
    p, backend, _ = planner([bad, good, "Thought: ok\nAction: Finish(9)"])
    async with p:
        result = await p.run("q?")
    assert result.answer == "9"
    assert result.replans == 1
    # the tasks before the bad line were dispatched and ran
    assert result.plans[0] == parse_plan("1. number(x=1)\n")
    assert [(o.task, o.value) for o in result.observations] == [(1, 1), (1, 9)]
    second = user_text(backend.requests[1])
    assert backend.requests[1].node_id == "plan1"
    assert "Plan error: line 2" in second and "nosuch" in second
    assert [c.role for c in result.llm_calls] == ["planner", "planner", "joiner"]


async def test_malformed_plan_on_the_last_round_goes_to_the_joiner():
    p, backend, _ = planner(["1. number(x=1, \n", "Thought: no plan\nAction: Finish(unknown)"], max_replans=0)
    async with p:
        result = await p.run("q?")
    assert result.answer == "unknown"
    assert result.plans == [[]]
    assert "Plan error:" in user_text(backend.requests[1])


async def test_failing_tool_becomes_an_observation_with_error():
    plan = "1. boom(x=4)\n2. add(a=$1, b=1)\n3. number(x=8)\n4. join()\n<END_OF_PLAN>"
    p, backend, trace = planner([plan, "Thought: got 8\nAction: Finish(8)"])
    async with p:
        result = await p.run("q?")
    assert result.answer == "8"
    by_task = {o.task: o for o in result.observations}
    assert by_task[1].value is None and "boom 4" in (by_task[1].error or "")
    assert by_task[2].error == "not run: it needs $1, which failed"
    assert (by_task[3].value, by_task[3].error) == (8, None)
    assert [c[0] for c in CALLS].count("add") == 0
    joiner_prompt = user_text(backend.requests[1])
    assert "Observation 1: error: ToolExecutionError" in joiner_prompt
    # the failing tool failed its node only: the planner's run (the one program) ended fine
    ends = {e.program_id: e.attrs["status"] for e in trace.of_kind("program_end")}
    assert ends == {result.trace_id: "ok"}
    errors = [(e.node_id, e.attrs["error_type"]) for e in trace.of_kind("node_error")]
    assert errors == [("p0_t1", "ToolExecutionError")]


async def test_truncated_plan_without_join_still_runs_and_bad_arguments_are_errors():
    plan = '1. number(x=2)\n2. add(3, 4)\n3. add(1, 2, 3)\n4. number(x="no")'  # no join, no newline
    p, _, _ = planner([plan, "Thought: t\nAction: Finish(done)"])
    async with p:
        result = await p.run("q?")
    by_task = {o.task: o for o in result.observations}
    assert (by_task[1].value, by_task[2].value, by_task[2].args) == (2, 7, {"a": 3, "b": 4})
    assert "at most 2 arguments" in (by_task[3].error or "")
    # arguments the tool's schema rejects: the run refuses the node (it never runs)
    assert (by_task[4].error or "").startswith(
        "ToolArgumentsError: node 'p0_t4': tool 'number': argument 'x'"
    )
    assert result.answer == "done"


def test_parse_joiner():
    d = parse_joiner("Thought: x is f(2)\nAction: Finish(f(2) = 4)")
    assert (d.thought, d.answer, d.replan) == ("x is f(2)", "f(2) = 4", False)
    assert parse_joiner("Thought: hmm\nAction: Replan").replan
    d = parse_joiner("no idea")
    assert (d.answer, d.replan) == (None, False)


@pytest.mark.slow  # SmolLM2 end to end
async def test_smollm2_end_to_end_k2():
    from bench.agent_questions import make_questions
    from examples.agent_tools import AGENT_TOOLS, set_latency
    from tether.agents.planner.agent import is_local_engine
    from tether.runtime.engine.models.sources import named_model_path

    try:
        named_model_path("smollm2")
    except Exception as exc:  # noqa: BLE001 - the model package is optional
        pytest.skip(f"SmolLM2 is not installed: {exc}")
    set_latency("none")
    question = make_questions(k=2, n=1, seed=0)[0]
    trace = MemoryTraceSink()
    planner = Planner(
        AGENT_TOOLS,
        model="smollm2",
        trace=trace,
        max_replans=1,
        planner_max_tokens=160,
        joiner_max_tokens=64,
        num_kv_blocks=512,
        max_num_batched_tokens=512,
    )
    async with planner:
        assert is_local_engine(planner.runtime.backend) and planner.constrained
        result = await planner.run(question.text)
        await planner.runtime.backend.engine.check_integrity()
    assert 1 <= len(result.plans) <= 2
    plan_texts = [e.attrs for e in trace.of_kind("node_end") if (e.node_id or "").startswith("plan")]
    assert len(plan_texts) == len(result.plans)
    for tasks in result.plans:  # every plan parsed (grammar-constrained), so every round reached a joiner
        assert tasks and all(t.tool in {x.name for x in AGENT_TOOLS} | {"join"} for t in tasks)
    assert [c.role for c in result.llm_calls].count("joiner") == len(result.plans)
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in result.llm_calls)
    assert isinstance(result.answer, str) and result.answer


class _LengthBackend(ScriptedBackend):
    """Ends every reply with ``finish_reason="length"`` (the token limit cut it)."""

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        async for delta in super().stream(request):
            if delta.result is not None:
                r = delta.result
                delta = LLMDelta("", LLMResult(r.text, r.usage, "length"))
            yield delta


async def test_plan_cut_off_at_the_token_limit_runs_its_complete_lines():
    backend = _LengthBackend(["1. number(x=2)\n2. add(a=$1, b=", "Thought: t\nAction: Finish(2)"])
    async with Planner(TOOLS, model=None, backend=backend, trace=MemoryTraceSink(), max_replans=1) as p:
        result = await p.run("q?")
    assert result.replans == 0 and result.answer == "2"
    assert result.plans == [parse_plan("1. number(x=2)\n")]
    assert "cut off at the token limit" in user_text(backend.requests[1])
