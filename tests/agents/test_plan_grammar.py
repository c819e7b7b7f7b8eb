"""plan_grammar: compiles with xgrammar, accepts valid plans, rejects invalid ones, and every plan it accepts
(random walks through the grammar) parses with parse_plan."""

from __future__ import annotations

import random
from typing import Literal

import pytest
from pydantic import BaseModel

from tether.agents.planner import PlanError, PlanGrammarError, parse_plan, plan_grammar
from tether.tools import tool

xgr = pytest.importorskip("xgrammar")
from xgrammar.testing import _get_masked_tokens_from_bitmask, _is_grammar_accept_string  # noqa: E402

SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "maxLength": 12},
                "k": {"type": "integer"},
                "mode": {"enum": ["fast", "$lo"]},
            },
            "required": ["query"],
        },
    },
}


class Point(BaseModel):
    x: float
    label: str | None = None


@tool
def plot(points: list[Point], scale: float, log: bool = False, style: Literal["a", "b"] = "a") -> str:
    """Plot points."""
    return ""


TOOLS = [SEARCH, plot]


def accepts(grammar: str, text: str) -> bool:
    return _is_grammar_accept_string(grammar, text)


@pytest.fixture(scope="module")
def grammar() -> str:
    text = plan_grammar(TOOLS, max_tasks=3, max_string_length=20, max_items=3)
    xgr.Grammar.from_ebnf(text)  # compiles
    return text


VALID = [
    '1. search(query="kv")\n2. join()\n<END_OF_PLAN>',
    "1. join()\n<END_OF_PLAN>",
    'Thought: look\n1. search(query="a \\$5 \\"q\\"", k=-3, mode="\\$lo")\n'
    'Thought: then plot\n2. plot(points=[{"x": 1.5e3, "label": "p ${1}"}, {"x": $1}], scale=$1)\n'
    '3. search(query="${2}", mode="fast")\n4. join()\n<END_OF_PLAN>',
    '1. plot(points=[], scale=2, log=True, style="b")\n2. join()\n<END_OF_PLAN>',
]

INVALID = [
    '1. search(query="kv")\n2. join()',  # no <END_OF_PLAN>
    "1. search(k=3)\n2. join()\n<END_OF_PLAN>",  # required query missing
    '1. search(k=3, query="kv")\n2. join()\n<END_OF_PLAN>',  # out of order
    '1. search(query="kv", k=$1)\n2. join()\n<END_OF_PLAN>',  # a reference to itself
    '1. search(query="kv")\n2. search(query="${3}")\n3. join()\n<END_OF_PLAN>',  # to a later task
    '1. search(query="$1")\n2. join()\n<END_OF_PLAN>',  # '$' must be escaped or ${N}
    '1. search(query="kv", mode="slow")\n2. join()\n<END_OF_PLAN>',  # not in the enum
    '1. search(query="0123456789abc")\n2. join()\n<END_OF_PLAN>',  # maxLength 12
    '2. search(query="kv")\n3. join()\n<END_OF_PLAN>',  # numbering starts at 1
    '1. search(query="kv")\n1. join()\n<END_OF_PLAN>',  # duplicate number
    '1. other(query="kv")\n2. join()\n<END_OF_PLAN>',  # unknown tool
    "1. plot(points=[], scale=1, log=true)\n2. join()\n<END_OF_PLAN>",  # JSON, not Python
    '1. plot(points=[{"label": "x"}], scale=1)\n2. join()\n<END_OF_PLAN>',  # x required
    '1. search(query="a")\n2. search(query="b")\n3. search(query="c")\n4. search(query="d")\n'
    "5. join()\n<END_OF_PLAN>",  # more than max_tasks
]


@pytest.mark.parametrize("text", VALID)
def test_valid_plans_are_accepted_and_parse(grammar, text):
    assert accepts(grammar, text)
    tasks = parse_plan(text, TOOLS)
    assert tasks[-1].is_join


@pytest.mark.parametrize("text", INVALID)
def test_invalid_plans_are_rejected(grammar, text):
    assert not accepts(grammar, text)


def test_accepted_plan_values():
    text = VALID[2]
    tasks = parse_plan(text, TOOLS)
    assert tasks[0].kwargs == {"query": 'a $5 "q"', "k": -3, "mode": "$lo"}
    assert tasks[1].kwargs["points"][0]["x"] == 1500.0 and tasks[1].deps == {1}
    assert tasks[3].deps == {1, 2, 3}


def _random_plan(compiled, vocab: list[str], rng: random.Random, limit: int = 4000) -> str:
    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, len(vocab))
    out = []
    for _ in range(limit):
        if matcher.is_terminated():
            return "".join(out)
        matcher.fill_next_token_bitmask(bitmask)
        rejected = set(_get_masked_tokens_from_bitmask(bitmask, len(vocab)))
        allowed = [i for i in range(len(vocab)) if i not in rejected]
        closers = [i for i in allowed if vocab[i] in ('"', ")", "]", "}", "\n", "<")]
        token = rng.choice(closers if closers and rng.random() < 0.3 else allowed)
        if token == len(vocab) - 1:  # the stop token
            assert matcher.accept_token(token) and matcher.is_terminated()
            return "".join(out)
        assert matcher.accept_token(token)
        out.append(vocab[token])
    raise AssertionError("random walk did not terminate: " + "".join(out)[-200:])


def test_random_walks_parse():
    text = plan_grammar(TOOLS, max_tasks=4, max_string_length=6, max_items=2)
    vocab = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "é", "<END_OF_PLAN>", "</s>"]
    info = xgr.TokenizerInfo(vocab, vocab_type=xgr.VocabType.RAW, stop_token_ids=[len(vocab) - 1])
    compiled = xgr.GrammarCompiler(info).compile_grammar(text)
    rng = random.Random(0)
    n_tasks, n_refs = set(), 0
    for _ in range(40):
        plan = _random_plan(compiled, vocab, rng)
        tasks = parse_plan(plan, TOOLS)
        assert tasks[-1].is_join and [t.idx for t in tasks] == list(range(1, len(tasks) + 1)), plan
        n_tasks.add(len(tasks))
        n_refs += sum(len(t.deps) for t in tasks if not t.is_join)
    assert len(n_tasks) > 1 and n_refs > 0  # walks of different lengths, some with references


def test_grammar_rejects_tools_plans_cannot_call():
    with pytest.raises(PlanGrammarError):
        plan_grammar([{"type": "function", "function": {"name": "join", "parameters": {}}}])
    with pytest.raises(PlanGrammarError):
        plan_grammar([{"name": "a b", "parameters": {}}])
    bad_arg = {"name": "f", "parameters": {"type": "object", "properties": {"from": {"type": "string"}}}}
    with pytest.raises(PlanGrammarError):
        plan_grammar([bad_arg])


def test_no_tools_means_join_only():
    text = plan_grammar([])
    assert accepts(text, "Thought: nothing to do\n1. join()\n<END_OF_PLAN>")
    assert not accepts(text, '1. search(query="x")\n2. join()\n<END_OF_PLAN>')
    with pytest.raises(PlanError):
        parse_plan('1. search(query="x")', tools=[])
