"""PlanStreamParser: the same tasks (and errors) as parse_plan, whatever the chunking."""

from __future__ import annotations

import pytest

from tether.agents.planner import PlanError, PlanStreamParser, parse_plan

SAMPLE = (
    "Thought: two lookups\n"
    '1. search("kv $ cache \\$5", k=3)\n'
    '12. search(query="see ${1}")\n'
    '{"id": 13, "tool": "fmt", "args": {"x": {"$ref": 12}, "s": "$1"}}\n'
    '14. add($12, [$1, {"k": ${13}}])\n'
    "15. join()\n"
    "<END_OF_PLAN>"
)


def _feed_all(chunks, tools=None):
    parser = PlanStreamParser(tools)
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.close()


def test_every_split_point_gives_parse_plans_tasks():
    expected = parse_plan(SAMPLE)
    assert len(expected) == 5
    for i in range(len(SAMPLE) + 1):
        assert _feed_all([SAMPLE[:i], SAMPLE[i:]]) == expected, i


def test_char_by_char_and_tasks_arrive_when_their_line_ends():
    expected = parse_plan(SAMPLE)
    parser = PlanStreamParser()
    got = []
    for pos, ch in enumerate(SAMPLE):
        new = parser.feed(ch)
        if new:
            assert ch == "\n" and SAMPLE[: pos + 1].count("\n") >= 2
        got += new
    assert parser.close() == [] and got == expected


def test_close_parses_a_last_line_without_newline():
    parser = PlanStreamParser()
    assert parser.feed("1. a()\n2. b($1)") == parse_plan("1. a()")
    assert parser.close() == parse_plan("1. a()\n2. b($1)")[1:]
    assert parser.close() == []
    with pytest.raises(RuntimeError):
        parser.feed("3. c()")


def test_bad_lines_raise_parse_plans_error_and_stay_failed():
    text = "1. a()\n\n2. b($3)\n3. c()\n"
    with pytest.raises(PlanError) as whole:
        parse_plan(text, tools=["a", "b", "c"])
    for i in range(len(text) + 1):
        parser = PlanStreamParser(["a", "b", "c"])
        with pytest.raises(PlanError) as streamed:
            parser.feed(text[:i])
            parser.feed(text[i:])
            parser.close()
        assert (streamed.value.line, streamed.value.task, streamed.value.kind) == (3, 2, "reference")
        assert str(streamed.value) == str(whole.value)
        with pytest.raises(PlanError):
            parser.feed("4. join()\n")


def test_unterminated_bad_last_line_fails_at_close():
    parser = PlanStreamParser(["a"])
    assert [t.idx for t in parser.feed("1. a()\n2. nope(")] == [1]
    with pytest.raises(PlanError) as info:
        parser.close()
    assert (info.value.line, info.value.task) == (2, 2)
