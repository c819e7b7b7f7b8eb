"""The forced mode of ``tether bench agents``: the reference trajectories (``bench/agent_references.py``), the
forcing backend (``tether.agents.forced``), the trace-drawn tool latencies and the side-by-side table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bench.agent_questions import Lookup, Question, check_answer, make_questions
from bench.agent_references import ReferenceError, make_reference, quote
from examples import agent_tools as at
from examples import tool_latency as tl
from tether.agents.bench import Sample, format_table, run_agents_bench, summarize
from tether.agents.forced import ForcedBackend, ForcedScriptError, install_forced, literal_grammar
from tether.agents.planner import parse_plan, plan_grammar
from tether.agents.planner.joiner import parse_joiner
from tether.agents.planner.prompts import joiner_grammar
from tether.agents.react_grammar import parse_turn, react_grammar, tool_specs
from tether.runtime.executor.llm import LLMRequest, LLMResult
from tether.runtime.tracing import MemoryTraceSink

xgr = pytest.importorskip("xgrammar")
from xgrammar.testing import _is_grammar_accept_string as accepts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "workloads"


@pytest.fixture(autouse=True)
def no_latency(no_tool_latency: None) -> None:
    """Every test here runs the example tools without their latency (tests/conftest.py)."""


# -- references -------------------------------------------------------------------------------------------------
def test_reference_plans_and_turns_parse_and_are_admitted_by_the_agents_grammars() -> None:
    plan_g = plan_grammar(at.AGENT_TOOLS, max_tasks=8, max_string_length=80)
    turn_g, specs = react_grammar(at.AGENT_TOOLS), tool_specs(at.AGENT_TOOLS)
    join_g, final_g = joiner_grammar(allow_replan=True), joiner_grammar(allow_replan=False)
    for k in range(2, 7):
        for q in make_questions(k, 3, 0):
            ref = make_reference(q)
            tasks = parse_plan(ref.plan, at.AGENT_TOOLS)
            assert [t.tool for t in tasks] == ["lookup"] * k + ["join"]
            assert [("lookup", dict(t.kwargs)) for t in tasks[:k]] == list(ref.calls)
            assert all(not t.deps and not t.args for t in tasks[:k])
            assert accepts(plan_g, ref.plan) and not accepts(plan_g, ref.plan + "\n")
            assert accepts(join_g, ref.joiner) and accepts(final_g, ref.joiner)
            decision = parse_joiner(ref.joiner)
            assert decision.answer == ref.answer and check_answer(q, decision.answer)
            assert len(ref.react) == k + 1 and ref.script("react") == ref.react
            for turn, (tool, args) in zip(ref.react, ref.calls, strict=False):
                assert accepts(turn_g, turn)
                parsed = parse_turn(turn, specs)
                assert (parsed.tool, parsed.args) == (tool, args)
            final = parse_turn(ref.react[-1], specs)
            assert final.is_finish and final.answer == ref.answer and accepts(turn_g, ref.react[-1])
            assert ref.script("planner") == (ref.plan, ref.joiner)


def test_reference_of_a_question_by_hand() -> None:
    q = make_questions(2, 1, 0)[0]
    assert q.text == "What is the mean melting point, in C, of Nitrogen and Hydrogen?"
    ref = make_reference(q)
    assert ref.plan == (
        "Thought: look up the melting_point_c of each, then join\n"
        '1. lookup(table="elements", key="Nitrogen", field="melting_point_c")\n'
        '2. lookup(table="elements", key="Hydrogen", field="melting_point_c")\n'
        "3. join()\n<END_OF_PLAN>"
    )
    assert ref.joiner == "Thought: The mean of the 2 values is -234.58.\nAction: Finish(-234.58)"
    assert ref.react[0] == (
        "Thought: I need the melting_point_c of Nitrogen.\n"
        'Action: lookup(table="elements", key="Nitrogen", field="melting_point_c")'
    )
    assert ref.react[-1] == ref.joiner
    with pytest.raises(ReferenceError, match="agent"):
        ref.script("other")


def test_arguments_with_quotes_and_dollars_are_escaped_for_each_grammar() -> None:
    key = 'A "b" $1 \\ c'
    assert quote(key, dollar=True) == '"A \\"b\\" \\$1 \\\\ c"'
    assert quote(key, dollar=False) == '"A \\"b\\" $1 \\\\ c"'
    q = Question(
        "Which of them?",
        2,
        "x",
        "max",
        (Lookup("cities", key, "population"), Lookup("cities", "x", "population")),
    )
    ref = make_reference(q)
    tasks = parse_plan(ref.plan, at.AGENT_TOOLS)
    assert tasks[0].kwargs["key"] == key and accepts(plan_grammar(at.AGENT_TOOLS), ref.plan)
    assert parse_turn(ref.react[0], tool_specs(at.AGENT_TOOLS)).args["key"] == key
    with pytest.raises(ReferenceError, match="control character"):
        quote("a\x01", dollar=True)
    with pytest.raises(ReferenceError, match="expected"):
        make_reference(Question("?", 2, "a (b)", "max", q.lookups))


# -- forcing ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['Thought: "x" \\ ${1} $2\n1. a\tb', "Bogotá 😀 東京", "x"])
def test_literal_grammar_admits_exactly_the_text(text: str) -> None:
    g = literal_grammar(text)
    assert accepts(g, text)
    assert not accepts(g, text[:-1]) and not accepts(g, text + " ") and not accepts(g, "y" + text)
    with pytest.raises(ValueError, match="text"):
        literal_grammar("")


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []
        self.reply: str | None = None

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        return LLMResult(
            self.reply if self.reply is not None else request.grammar or "free", finish_reason="stop"
        )

    async def end_program(self, program_id: str) -> None: ...

    async def close(self) -> None: ...


def _req(node: str, attempt: int = 1, grammar: str | None = 'root ::= "a"') -> LLMRequest:
    return LLMRequest("p1", node, prompt="hi", max_tokens=4, grammar=grammar, attempt=attempt)


async def test_forced_backend_scripts_calls_in_order_and_retries_get_the_same_text() -> None:
    inner = FakeBackend()
    forced = ForcedBackend(inner)
    assert (await forced.complete(_req("n0"))).text == 'root ::= "a"'  # no script: unchanged
    forced.expect(["first text", "second"])
    inner.reply = "first text"
    assert (await forced.complete(_req("n1"))).text == "first text"
    assert (await forced.complete(_req("n1", attempt=2))).text == "first text"
    sent = inner.requests[-1]
    assert sent.grammar == literal_grammar("first text") and sent.max_tokens == len(b"first text") + 8
    assert forced.forced == [("p1/n1#1", "first text"), ("p1/n1#2", "first text")]
    inner.reply = "not it"
    with pytest.raises(ForcedScriptError, match="not the reference 'second'"):
        await forced.complete(_req("n2"))
    with pytest.raises(ForcedScriptError, match="no reference text left"):
        await forced.complete(_req("n3"))
    forced.finish()
    assert not forced.active
    forced.expect(["unused"])
    with pytest.raises(ForcedScriptError, match="1 reference text"):
        forced.finish()
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        forced.expect(["a", ""])


async def test_the_tiny_engine_decodes_exactly_the_forced_texts() -> None:
    """The tiny model's random weights cannot write a reference by chance: a reply equal to the reference was
    decoded under the literal grammar, token by token (streamed, as the planner reads its plan)."""
    from tether.agents.runtime import AgentRuntime
    from tether.runtime.executor.llm import stream_llm

    rt = await AgentRuntime.create(at.AGENT_TOOLS, model="tiny", num_kv_blocks=64, trace=MemoryTraceSink())
    try:
        forced = install_forced(rt)
        assert install_forced(rt) is forced and rt.executor.llm is forced and rt.backend is forced.inner
        ref = make_reference(make_questions(3, 1, 0)[0])
        free = await forced.complete(LLMRequest("p", "n0", prompt="Question:", max_tokens=len(ref.joiner)))
        assert free.text != ref.joiner  # unforced, the engine writes something else
        forced.expect([ref.plan, ref.react[0]])
        deltas = [
            d async for d in stream_llm(forced, LLMRequest("p", "n1", prompt="Question:", max_tokens=16))
        ]
        assert len(deltas) > 2 and "".join(d.text for d in deltas) == ref.plan
        result = deltas[-1].result
        assert result is not None and result.text == ref.plan and result.finish_reason == "stop"
        assert result.completion_tokens >= len(ref.plan.encode())  # the byte tokenizer: one token a byte
        turn = await forced.complete(LLMRequest("p", "n2", prompt="Question:", max_tokens=4))
        assert turn.text == ref.react[0]
        forced.finish()
        await rt.backend.engine.check_integrity()
    finally:
        await rt.close()


async def test_a_forced_run_whose_calls_differ_is_an_error() -> None:
    class WrongAgent:
        async def run(self, question: str) -> Any:
            from tether.agents.result import AgentResult, Observation

            forced.force(_req("a"))
            forced.force(_req("b"))
            obs = [Observation(1, "lookup", {"table": "cities", "key": "Paris", "field": "population"}, 1)]
            return AgentResult("x", observations=obs, seconds=0.1)

    forced = ForcedBackend(FakeBackend())
    result = await run_agents_bench(
        {"planner": WrongAgent()},
        ks=(2,),
        n=1,
        warmup=False,
        latency="none",
        modes=("forced",),
        forced=forced,
    )
    (s,) = result.samples
    assert s.error is not None and s.error.startswith("forced run made the calls") and not s.correct
    assert not forced.active
    with pytest.raises(ValueError, match="ForcedBackend"):
        await run_agents_bench({"planner": WrongAgent()}, ks=(2,), n=1, modes=("forced",))
    with pytest.raises(ValueError, match="modes"):
        await run_agents_bench({"planner": WrongAgent()}, ks=(2,), n=1, modes=("free", "free"))


# -- table ------------------------------------------------------------------------------------------------------
def _s(agent: str, mode: str, seconds: float, correct: bool = True, llm: int = 2) -> Sample:
    return Sample(agent, 4, 0, "q", "a", correct, seconds, llm, 100 * llm, 10, 80 * llm, 4, 0, mode=mode)


def test_side_by_side_table_and_intervals() -> None:
    samples = [_s("planner", "free", t, correct=t < 3) for t in (2.0, 4.0)]
    samples += [_s("react", "free", t, llm=5) for t in (6.0, 10.0)]
    samples += [_s("planner", "forced", t) for t in (1.0, 2.0, 3.0, 4.0, 5.0)]
    samples += [_s("react", "forced", t, llm=5) for t in (3.0, 6.0, 9.0, 12.0, 15.0)]
    rows = summarize(samples, [4], ["planner", "react"], "free") + summarize(
        samples, [4], ["planner", "react"], "forced"
    )
    free, forced = rows
    assert (free.mode, free.latency_ratio, forced.mode, forced.latency_ratio) == (
        "free",
        8 / 3,
        "forced",
        3.0,
    )
    p = forced.agents["planner"]
    assert (p.n, p.latency_s, p.latency_p25_s, p.latency_p75_s, p.cached_tokens) == (5, 3.0, 2.0, 4.0, 160)
    assert free.agents["planner"].accuracy == 0.5
    from tether.agents.bench import BenchResult

    result = BenchResult([4], 5, 0, "traces", ["planner", "react"], ["free", "forced"], samples, rows)
    lines = format_table(result).splitlines()
    assert len(lines) == 4 and "forced" in lines[0] and "[p25-p75]" in lines[1]
    assert lines[2].split() == "4 planner | 2 50% 3.00 0 | 5 3.00 [2.00-4.00] 2 200 160 10 4 0 |".split()
    assert (
        lines[3].split()
        == "4 react | 2 100% 8.00 0 | 5 9.00 [6.00-12.00] 5 500 400 10 4 0 | 2.67x 3.00x".split()
    )
    result.modes = ["free"]
    assert "react/planner" in format_table(result).splitlines()[0]


# -- tool latency from the traces -------------------------------------------------------------------------------
def test_trace_latency_is_a_measured_duration_seeded_by_the_call() -> None:
    args = {"table": "cities", "key": "Paris", "field": "population"}
    d = at.trace_latency_s("lookup", args)
    assert d == at.trace_latency_s("lookup", args) and d in tl.samples()["lookup"]
    draws = {at.trace_latency_s("lookup", {**args, "key": str(i)}) for i in range(200)}
    assert len(draws) > 50 and draws <= set(tl.samples()["lookup"])
    at.set_latency("traces", 3)
    assert at.trace_latency_s("lookup", args) != d or at.trace_latency_s("lookup", {**args, "key": "x"}) != d
    with pytest.raises(tl.ToolLatencyError, match="nope"):
        tl.draw("nope", "k")
    with pytest.raises(ValueError, match="'traces', 'realistic' or 'none'"):
        at.set_latency("slow")


async def test_traces_mode_sleeps_the_drawn_duration() -> None:
    from tether.tools import LocalToolRunner, ToolRegistry

    at.set_latency("traces", 0)
    args = {"expression": "1 + 2"}
    expected = at.trace_latency_s("calculator", args)
    runner = LocalToolRunner(at.register_agent_tools(ToolRegistry()))
    start = time.perf_counter()
    assert await runner.call("calculator", args, call_id="t") == 3.0
    assert time.perf_counter() - start >= expected * 0.95


def test_the_fitted_durations_are_the_traces_and_map_every_tool() -> None:
    assert set(tl.samples()) == {t.name for t in at.AGENT_TOOLS} == set(tl.TRACE_TOOLS)
    if not all(p.exists() for p in tl.DEFAULT_TRACES):
        pytest.skip("../shared/workloads is not here")
    fitted = tl.fit(list(tl.DEFAULT_TRACES))
    assert {t: tuple(v) for t, v in fitted["samples"].items()} == tl.samples()  # type: ignore[union-attr]
    assert len(tl.samples()["lookup"]) == 619 and tl.samples()["lookup"] == tuple(
        sorted(tl.samples()["lookup"])
    )


# -- end to end -------------------------------------------------------------------------------------------------
@pytest.mark.slow  # both agents, both modes, on the tiny engine through the CLI
def test_cli_forced_bench_writes_both_modes_and_the_reference_calls(tmp_path: Path) -> None:
    import json

    from tether.cli import main

    out = tmp_path / "bench.json"
    argv = [
        "bench",
        "agents",
        "--forced",
        "--model",
        "tiny",
        "--ks",
        "2",
        "--questions",
        "2",
        "--max-steps",
        "3",  # k + 1: the forced ReAct needs k lookup turns and its Finish
    ]
    argv += [
        "--latency",
        "traces",
        "--num-kv-blocks",
        "1024",
        "--trace-dir",
        str(tmp_path),
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert (doc["ks"], doc["n"], doc["modes"], doc["agents"]) == (
        [2],
        2,
        ["free", "forced"],
        ["planner", "react"],
    )
    assert [(r["mode"], r["k"], sorted(r["agents"])) for r in doc["rows"]] == [
        ("free", 2, ["planner", "react"]),
        ("forced", 2, ["planner", "react"]),
    ]
    forced = [s for s in doc["samples"] if s["mode"] == "forced"]
    assert len(forced) == 4 and len(doc["samples"]) == 8
    refs = {q.text: make_reference(q) for q in make_questions(2, 2, 0)}
    for s in forced:
        ref = refs[s["question"]]
        assert s["error"] is None and s["correct"] and s["answer"] == ref.answer
        assert s["calls"] == [list(c) for c in ref.calls]
        assert s["llm_calls"] == len(ref.script(s["agent"]))
        assert 0 < s["llm_seconds"] <= s["seconds"] and s["tool_seconds"] > 0
    assert all(
        s["cached_tokens"] > 0 for s in forced if s["agent"] == "react"
    )  # later turns reuse the prefix
    stats = doc["rows"][1]["agents"]["react"]
    assert stats["latency_p25_s"] <= stats["latency_s"] <= stats["latency_p75_s"]
