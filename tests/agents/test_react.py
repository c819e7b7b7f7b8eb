"""ReActAgent: the thought/action/observation loop on one growing conversation (scripted backend), tool
errors as observations, max_steps, Finish parsing, the turn grammar, the benchmark's aggregation, and one
end-to-end run on SmolLM2."""

from __future__ import annotations

import pytest

from tether.agents.bench import Sample, format_table, run_agents_bench, summarize
from tether.agents.react import LAST_STEP_NOTE, ReActAgent, observation_text
from tether.agents.react_grammar import ReActFormatError, parse_turn, react_grammar, signature, tool_specs
from tether.agents.result import AgentResult, LLMUsage, Observation
from tether.agents.runtime import AgentRuntime
from tether.runtime.executor import LLMRequest, LLMResult, Usage
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import ToolError, tool


@tool
async def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
async def fetch(key: str, mode: str = "fast") -> str:
    """Fetch a value by key.

    Args:
        key: which value.
        mode: how.
    """
    if key == "missing":
        raise ToolError(f"no key {key!r}", tool="fetch")
    return f"value of {key} (${{x}} {mode})"


TOOLS = [add, fetch]


class ScriptedBackend:
    """Answers each request with the next scripted text; records the requests."""

    name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.requests: list[LLMRequest] = []
        self.ended: list[str] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        n = len(self.requests)
        usage = Usage(prompt_tokens=100 * n, completion_tokens=10 + n, cached_tokens=90 * n)
        return LLMResult(self.replies.pop(0), usage=usage)

    async def end_program(self, program_id: str) -> None:
        self.ended.append(program_id)

    async def close(self) -> None:
        pass


async def _agent(replies: list[str], **kwargs) -> tuple[ReActAgent, ScriptedBackend, MemoryTraceSink]:
    backend, trace = ScriptedBackend(replies), MemoryTraceSink()
    rt = await AgentRuntime.create(TOOLS, backend=backend, trace=trace)
    return ReActAgent(TOOLS, runtime=rt, **kwargs), backend, trace


def _contents(request: LLMRequest) -> list[tuple[str, str]]:
    assert request.messages is not None
    return [(m["role"], m["content"]) for m in request.messages]


async def test_loop_one_growing_conversation_and_exact_result():
    replies = [
        "Thought: add them\nAction: add(a=1, b=2.5)",
        'Thought: now fetch\nAction: fetch("k1", mode="slow")\nObservation: invented',
        'Thought: done\nAction: Finish("3.5 and k1")',
    ]
    agent, backend, trace = await _agent(replies)
    result = await agent.run("What is 1 + 2.5, and k1?")
    assert isinstance(result, AgentResult)
    assert result.answer == "3.5 and k1"
    assert result.plans == [] and result.replans == 0 and result.trace_id.startswith("react-")
    assert [(o.task, o.tool, o.args, o.value, o.error) for o in result.observations] == [
        (1, "add", {"a": 1, "b": 2.5}, 3.5, None),
        (2, "fetch", {"key": "k1", "mode": "slow"}, "value of k1 (${x} slow)", None),
    ]
    assert result.llm_calls == [
        LLMUsage("react", 100 * n, 10 + n, 90 * n, result.llm_calls[n - 1].seconds) for n in (1, 2, 3)
    ]
    assert (result.prompt_tokens, result.completion_tokens) == (600, 36)
    reqs = backend.requests
    assert len(reqs) == 3 and {r.program_id for r in reqs} == {result.trace_id}
    for prev, nxt in zip(reqs, reqs[1:], strict=False):  # each conversation extends the previous one
        assert _contents(nxt)[: len(_contents(prev))] == _contents(prev)
    last = _contents(reqs[2])
    assert last[0][0] == "system" and "add(a: float, b: float): Add two numbers." in last[0][1]
    assert last[1:] == [
        ("user", "What is 1 + 2.5, and k1?"),
        ("assistant", "Thought: add them\nAction: add(a=1, b=2.5)"),
        ("user", "Observation: 3.5"),
        ("assistant", 'Thought: now fetch\nAction: fetch("k1", mode="slow")'),  # the invented part dropped
        ("user", "Observation: value of k1 (${x} slow)"),  # a "${" in a value is text, not a reference
    ]
    assert [r.hints.turn for r in reqs] == [0, 1, 2] and all(r.grammar is None for r in reqs)
    starts = [e.node_id for e in trace.of_kind("node_start") if e.program_id == result.trace_id]
    assert starts == ["llm1", "tool1", "llm2", "tool2", "llm3"]  # one held run: llm -> tool -> llm ...
    await agent.close()


async def test_tool_errors_are_observations():
    replies = [
        'Thought: a\nAction: fetch(key="missing")',  # the tool raises: the run ends, a new one goes on
        'Thought: b\nAction: add(a="x", b=1)',  # fails the schema: no node at all
        "Thought: c\nAction: nope(1)",  # not a tool: a format error, shown, not an observation
        "Thought: d\nAction: Finish(42)",
    ]
    agent, backend, trace = await _agent(replies)
    result = await agent.run("q")
    assert result.answer == "42"
    (o1, o2) = result.observations
    assert (o1.tool, o1.value) == ("fetch", None) and "no key 'missing'" in o1.error
    assert (o2.tool, o2.args, o2.value) == ("add", {"a": "x", "b": 1}, None) and "a" in o2.error
    msgs = _contents(backend.requests[3])
    assert msgs[3][1].startswith("Observation: Error: ") and "missing" in msgs[3][1]
    assert msgs[5][1].startswith("Observation: Error: ")
    assert msgs[7][1].startswith("Observation: Error: unknown tool 'nope'")
    pids = [r.program_id for r in backend.requests]
    assert pids == [result.trace_id] * 4  # a failed tool is a value: one program throughout
    assert backend.ended == [result.trace_id]
    failed = [e for e in trace.of_kind("tool_call") if e.attrs["status"] == "error"]
    assert [e.attrs["tool"] for e in failed] == ["fetch"]
    await agent.close()


async def test_max_steps_and_constrained_turns():
    replies = ["Thought: one\nAction: add(a=1, b=1)", "Thought: two\nAction: add(a=2, b=2)", "Thought: 3"]
    agent, backend, _ = await _agent(replies, max_steps=3, constrained=True)
    result = await agent.run("q")
    assert len(result.llm_calls) == 3 and [o.value for o in result.observations] == [2, 4]
    assert result.answer == "two 4"  # out of steps: the last thought and observation
    g_first, g_mid, g_last = (r.grammar for r in backend.requests)
    assert g_first == react_grammar(TOOLS, allow_finish=False)  # min_tool_calls=1: no Finish before a call
    assert g_mid == react_grammar(TOOLS)
    assert g_last == react_grammar((), finish_only=True)
    assert backend.requests[2].hints.last_turn and _contents(backend.requests[2])[-1][1].endswith(
        LAST_STEP_NOTE
    )
    await agent.close()


def test_parse_turn():
    specs = tool_specs(TOOLS)
    assert parse_turn('Thought: x\nAction: Finish("Paris")', specs).answer == "Paris"
    assert parse_turn("Thought: x\nAction: Finish[12.5]", specs).answer == "12.5"
    assert parse_turn("Thought: x\nAction: Finish(The answer is Oslo)", specs).answer == "The answer is Oslo"
    t = parse_turn('Thought: hm\nAction: fetch({"key": "a", "mode": "b"})', specs)
    assert (t.thought, t.tool, t.args, t.is_finish) == ("hm", "fetch", {"key": "a", "mode": "b"}, False)
    assert parse_turn("Action: add(1, b=2)", specs).args == {"a": 1, "b": 2}
    for bad in (
        "Thought: no action",
        "Action: add(a=x)",
        "Action: add(1, 2, 3)",
        "Action: other()",
        "Action: add(a=1",
    ):
        with pytest.raises(ReActFormatError):
            parse_turn(bad, specs)
    assert signature(specs[1]) == 'fetch(key: str, mode: str = "fast")'
    assert observation_text(3.0) == "3" and observation_text([{"a": 1}]) == '[{"a": 1}]'
    assert observation_text("x" * 2000, limit=5) == "xxxxx ...(cut)"


def test_grammar_accepts_valid_turns_and_rejects_invalid_ones():
    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string as accepts

    g = react_grammar(TOOLS, max_thought_chars=40, max_string_length=10)
    xgr.Grammar.from_ebnf(g)
    good = [
        "Thought: sum\nAction: add(a=1, b=-2.5e3)",
        'Thought: \nAction: fetch(key="k")',
        'Thought: x\nAction: fetch(key="k\\"q", mode="m")',
        'Thought: x\nAction: Finish("Oslo")',
        "Thought: x\nAction: Finish(42)",
        "Thought: x\nAction: Finish(It is Oslo)",
    ]
    bad = [
        "Action: add(a=1, b=2)",  # no thought
        "Thought: x\nAction: add(b=2, a=1)",  # keyword order
        "Thought: x\nAction: add(a=1)",  # a required argument missing
        'Thought: x\nAction: add(a="1", b=2)',  # a string for a number
        'Thought: x\nAction: fetch(mode="m")',
        "Thought: x\nAction: other()",
        "Thought: two\nlines\nAction: Finish(1)",
        "Thought: " + "y" * 41 + "\nAction: Finish(1)",
        "Thought: x\nAction: Finish(a(b))",
    ]
    for text in good:
        assert accepts(g, text), text
    for text in bad:
        assert not accepts(g, text), text
    only_tools = react_grammar(TOOLS, allow_finish=False)
    assert not accepts(only_tools, "Thought: x\nAction: Finish(1)")
    assert accepts(only_tools, "Thought: x\nAction: add(a=1, b=2)")
    finish = react_grammar(TOOLS, finish_only=True)
    assert accepts(finish, "Thought: x\nAction: Finish(1)")
    assert not accepts(finish, "Thought: x\nAction: add(a=1, b=2)")


def _sample(agent: str, k: int, seconds: float, correct: bool, llm: int, tools: int, error=None) -> Sample:
    return Sample(agent, k, 0, "q", "a", correct, seconds, llm, 10 * llm, llm, 5 * llm, tools, 0, error)


def test_summarize_medians_accuracy_and_ratio():
    samples = [
        _sample("planner", 2, 1.0, True, 2, 2),
        _sample("planner", 2, 3.0, True, 2, 2),
        _sample("planner", 2, 2.0, False, 3, 4),
        _sample("react", 2, 4.0, True, 3, 2),
        _sample("react", 2, 8.0, False, 5, 4),
        _sample("react", 2, 6.0, False, 0, 0, error="boom"),
    ]
    (row,) = summarize(samples, [2], ["planner", "react"])
    p, r = row.agents["planner"], row.agents["react"]
    assert (p.n, p.accuracy, p.latency_s, p.llm_calls, p.prompt_tokens, p.tool_calls) == (
        3,
        2 / 3,
        2.0,
        2,
        20,
        2,
    )
    assert (r.accuracy, r.latency_s, r.llm_calls, r.errors) == (1 / 3, 6.0, 3, 1)
    assert row.latency_ratio == 3.0


class FakeAgent:
    def __init__(self, name: str, seconds: float, log: list[str], fail_on: int | None = None) -> None:
        self.name, self.seconds, self.log, self.fail_on = name, seconds, log, fail_on

    async def run(self, question: str) -> AgentResult:
        self.log.append(f"{self.name}:{question}")
        if len([e for e in self.log if e.startswith(self.name + ":")]) == self.fail_on:
            raise RuntimeError("boom")
        obs = [Observation(1, "lookup", {}, 1)]
        usage = [LLMUsage("x", 7, 3, 2, 0.1)]
        return AgentResult("Answer: 0", observations=obs, llm_calls=usage, seconds=self.seconds)


async def test_harness_same_questions_sequential_alternating():
    from bench.agent_questions import make_questions

    log: list[str] = []
    agents = {"planner": FakeAgent("planner", 1.0, log), "react": FakeAgent("react", 2.5, log, fail_on=3)}
    result = await run_agents_bench(agents, ks=(2, 3), n=2, seed=1, latency="none", warmup=False)
    qs = [q.text for k in (2, 3) for q in make_questions(k, 2, 1)]
    expected = []
    for i, q in enumerate(qs):  # the same questions, one run at a time, the first agent alternating
        order = ["planner", "react"] if i % 2 == 0 else ["react", "planner"]
        expected += [f"{name}:{q}" for name in order]
    assert log == expected
    assert len(result.samples) == 8 and [row.k for row in result.rows] == [2, 3]
    k2, k3 = result.rows
    assert k2.agents["planner"].latency_s == 1.0 and k2.agents["planner"].prompt_tokens == 7
    assert k2.latency_ratio == 2.5 and k2.agents["react"].errors == 0
    failed = [s for s in result.samples if s.error is not None]
    assert [(s.agent, s.k, s.index, s.correct) for s in failed] == [("react", 3, 0, False)]
    assert failed[0].error == "RuntimeError: boom" and k3.agents["react"].errors == 1
    assert k3.latency_ratio == pytest.approx((2.5 + failed[0].seconds) / 2)
    assert "react/planner" in format_table(result)


@pytest.mark.slow  # SmolLM2 end to end
async def test_smollm2_end_to_end():
    from bench.agent_questions import make_questions
    from examples.agent_tools import AGENT_TOOLS, set_latency

    set_latency("none")
    question = make_questions(2, 1, 0)[0]
    trace = MemoryTraceSink()
    async with ReActAgent(AGENT_TOOLS, model="smollm2", max_steps=3, trace=trace, num_kv_blocks=256) as agent:
        result = await agent.run(question.text)
        assert isinstance(result, AgentResult) and isinstance(result.answer, str)
        assert 1 <= len(result.llm_calls) <= 3 and len(result.observations) <= 2
        assert len(result.observations) >= 1  # min_tool_calls=1: the first constrained turn calls a tool
        assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in result.llm_calls)
        if len(result.llm_calls) > 1:  # later turns reuse the conversation's KV
            assert result.llm_calls[1].cached_tokens >= result.llm_calls[0].prompt_tokens // 2
        assert agent.runtime is not None
        await agent.runtime.backend.engine.check_integrity()  # AsyncEngine -> LLMEngine.check_integrity
