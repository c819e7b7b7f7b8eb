"""Plans: random and mutated plan text gives tasks or a ``PlanError`` naming the line; the stream parser,
fed the same text in random chunks, agrees with ``parse_plan``."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.counts import FUZZ, SCALE, tried
from tether.agents.planner import PlanError, PlanStreamParser, parse_plan

pytestmark = [
    pytest.mark.slow,  # a hypothesis hunt: hundreds of generated inputs per target
    pytest.mark.filterwarnings("error"),  # a warning from ast must not change what parses
]
TOOLS = ["search", "compare", "fetch"]
GOOD = """Thought: look both up
1. search("kv cache", k=3)
2. search(query="paged attention")
3. compare($1, ${2}, note="compare $1 and ${2} \\\\$5", opts={"keys": [$1]})  # both
{"id": 4, "tool": "fetch", "args": {"x": {"$ref": 1}, "y": "see $3"}}
5. join()
<END_OF_PLAN>"""
PIECES = [
    "$",
    "${",
    "}",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "\\",
    "#",
    ",",
    "=",
    "\n",
    "<END_OF_PLAN>",
    "join()",
    "Thought:",
    "1.",
    "0.",
    "99999999999999999999.",
    "$1",
    "${7}",
    '{"id": 2}',
    "*",
    "**",
    "lambda: 0",
    "f'x'",
    "b''",
    "{1, 2}",
    "__tether_ref_1__",
    "\x00",
    "\u0661.",
    "1e999",
    "-",
    "'''",
]


def _check(text: str, chunks: list[int]) -> None:
    tried("plan")
    try:
        expected = parse_plan(text, TOOLS)
    except PlanError as exc:
        assert exc.line is not None and 1 <= exc.line <= text.count("\n") + 1, exc
        expected = exc
    parser = PlanStreamParser(TOOLS)
    got = []
    try:
        start = 0
        for size in [*chunks, len(text)]:
            got += parser.feed(text[start : start + size])
            start += size
        got += parser.close()
    except PlanError as exc:
        assert isinstance(expected, PlanError) and str(exc) == str(expected)
        return
    assert got == expected


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = GOOD
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "swap_lines"]))
        if op == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES) | st.text(max_size=3)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 6)) :]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


chunk_sizes = st.lists(st.integers(0, 12), max_size=20)


@settings(FUZZ, max_examples=250 * SCALE)
@given(mutated(), chunk_sizes)
@example("1" * 5000 + ". search(1)", [])
@example('{"id": ' + "1" * 5000 + ', "tool": "search"}', [])
@example("1. search(" + "[" * 300 + ")", [])
@example('{"id": 1, "tool": "search", "args": ' + "[" * 3000 + "}", [])
@example("1. search('\x00')", [])
@example('1. search("\\,")', [])  # ast warned "invalid escape sequence": under -W error it failed the plan
def test_mutated_plans(text: str, chunks: list[int]) -> None:
    _check(text, chunks)


@settings(FUZZ, max_examples=150 * SCALE)
@given(st.lists(st.sampled_from(PIECES) | st.characters(), max_size=40).map("".join), chunk_sizes)
def test_random_plans(text: str, chunks: list[int]) -> None:
    _check(text, chunks)
