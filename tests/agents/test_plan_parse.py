"""The plan language: parse_plan's rules and errors, resolve_args, format_plan."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from tether.agents.planner import (
    PlanError,
    PlanTask,
    RefString,
    TaskRef,
    format_plan,
    parse_plan,
    resolve_args,
)

PLAN = """Thought: look both up
1. search("kv cache", k=3)
2. search(query="paged attention")
Thought: compare them
3. compare($1, ${2}, note="compare $1 and ${2}", opts={"keys": [$1, {"k": $2}], "n": -2})
4. join()
<END_OF_PLAN>
"""


def test_parse_positional_keyword_refs_thoughts_and_join():
    tasks = parse_plan(PLAN, tools=["search", "compare"])
    assert tasks == [
        PlanTask(1, "search", ("kv cache",), {"k": 3}, frozenset(), "look both up"),
        PlanTask(2, "search", (), {"query": "paged attention"}, frozenset(), None),
        PlanTask(
            3,
            "compare",
            (TaskRef(1), TaskRef(2)),
            {
                "note": RefString(("compare ", TaskRef(1), " and ", TaskRef(2))),
                "opts": {"keys": [TaskRef(1), {"k": TaskRef(2)}], "n": -2},
            },
            frozenset({1, 2}),
            "compare them",
        ),
        PlanTask(4, "join", (), {}, frozenset({1, 2, 3}), None),
    ]
    assert tasks[3].is_join and not tasks[0].is_join


def test_literals_of_every_allowed_type():
    (task,) = parse_plan('7. f("s", 1, -2.5, +3, True, False, None, [1, (2,)], (), {"a": {1: [None]}})')
    assert task.idx == 7
    assert task.args == ("s", 1, -2.5, 3, True, False, None, [1, (2,)], (), {"a": {1: [None]}})
    assert type(task.args[1]) is int and type(task.args[2]) is float


def test_strings_refs_escapes_and_plain_dollars():
    text = r"""1. a()
2. f("$1", "\$5", "cost: $ and $x", '${1}0', "\\$1", "a\"b$1")
"""
    _, task = parse_plan(text)
    assert task.args == (
        RefString((TaskRef(1),)),
        "$5",
        "cost: $ and $x",
        RefString((TaskRef(1), "0")),
        RefString(("\\", TaskRef(1))),
        RefString(('a"b', TaskRef(1))),
    )
    assert task.deps == {1}


def test_multi_digit_refs_gaps_and_trailing_comment():
    tasks = parse_plan('3. a()\n12. b($3, x=${3}) # why\n20. c("$12$3")\n21. join()')
    assert [t.idx for t in tasks] == [3, 12, 20, 21]
    assert tasks[1].args == (TaskRef(3),) and tasks[1].kwargs == {"x": TaskRef(3)}
    assert tasks[2].args == (RefString((TaskRef(12), TaskRef(3))),) and tasks[2].deps == {3, 12}
    assert tasks[3].deps == {3, 12, 20}


def test_end_of_plan_on_the_join_line_and_things_after_join():
    tasks = parse_plan("1. a()\n2. join()<END_OF_PLAN>\n\nThought: ok\n<END_OF_PLAN>\n")
    assert [t.tool for t in tasks] == ["a", "join"] and tasks[1].deps == {1}
    assert parse_plan("1. join()") == [PlanTask(1, "join")]
    assert parse_plan("") == [] and parse_plan("Thought: nothing to do\n") == []


def test_plan_without_join_is_returned_as_is():
    tasks = parse_plan("1. a()\n2. b($1)\n")
    assert [t.tool for t in tasks] == ["a", "b"] and not tasks[-1].is_join


def test_json_lines_form():
    text = (
        '{"id": 1, "tool": "search", "args": {"query": "kv", "k": 2}}\n'
        '{"id": 2, "tool": "fmt", "args": {"x": {"$ref": 1}, "s": "got $1, \\\\$3", "l": [{"$ref": 1}]}}\n'
        "3. mixed($2)\n"
        '{"id": 4, "tool": "join", "args": {}}\n'
    )
    tasks = parse_plan(text, tools={"search": None, "fmt": None, "mixed": None})
    assert tasks[0] == PlanTask(1, "search", (), {"query": "kv", "k": 2}, frozenset())
    assert tasks[1].kwargs == {
        "x": TaskRef(1),
        "s": RefString(("got ", TaskRef(1), ", $3")),
        "l": [TaskRef(1)],
    }
    assert tasks[1].deps == {1} and tasks[2].deps == {2}
    assert tasks[3] == PlanTask(4, "join", (), {}, frozenset({1, 2, 3}))


@pytest.mark.parametrize(
    ("text", "kind", "line", "task"),
    [
        ("1. a($2)\n2. b()", "reference", 1, 1),  # a later task
        ("1. a()\n\n2. b($2)", "reference", 3, 2),  # itself
        ("2. a()\n3. b($1)", "reference", 2, 3),  # a missing task
        ("1. a()\n2. b('x ${5}')", "reference", 2, 2),  # inside a string
        ("1. a()\n2. b([{'k': $7}])", "reference", 2, 2),  # nested
        ('{"id": 1, "tool": "a", "args": {"x": {"$ref": 4}}}', "reference", 1, 1),
        ("1. a()\nThought: x\n1. b()", "duplicate", 3, 1),
        ("2. a()\n1. b()", "order", 2, 1),
        ("0. a()", "order", 1, 0),
        ("1. a(", "malformed", 1, 1),
        ("1. a()\n2. b(len('x'))", "malformed", 2, 2),  # a call inside the arguments
        ("1. a(x)", "malformed", 1, 1),  # a name
        ("1. a(1 + 2)", "malformed", 1, 1),
        ("1. a(*[1])", "malformed", 1, 1),
        ("1. a(**{'k': 1})", "malformed", 1, 1),
        ("1. a(f'x')", "malformed", 1, 1),
        ("1. a(b'x')", "malformed", 1, 1),
        ("1. a({1, 2})", "malformed", 1, 1),
        ("1. a($)", "malformed", 1, 1),
        ("1. a($1x)", "malformed", 1, 1),
        ("1. a(__tether_ref_1__)", "malformed", 1, 1),
        ("1. a() trailing", "malformed", 1, 1),
        ("1. a", "malformed", 1, 1),
        ("Here is the plan:\n1. a()", "malformed", 1, None),
        ("1. a()\n<END_OF_PLAN>", "malformed", 2, None),
        ("1. a()<END_OF_PLAN>", "malformed", 1, 1),
        ("1. join(1)", "malformed", 1, 1),
        ('{"id": 1, "tool": "a", "args": 3}', "malformed", 1, None),
        ('{"id": "1", "tool": "a"}', "malformed", 1, None),
        ('{"id": 1, "tool": "a", "args": {}', "malformed", 1, None),
        ("1. a()\n2. nope()", "unknown_tool", 2, 2),
        ("1. a()\n2. join()\n3. a()", "after_join", 3, None),
        ("1. join()\n<END_OF_PLAN>\nmore", "after_join", 3, None),
    ],
)
def test_plan_errors_name_the_line_and_task(text, kind, line, task):
    with pytest.raises(PlanError) as info:
        parse_plan(text, tools=["a", "b"])
    assert (info.value.kind, info.value.line, info.value.task) == (kind, line, task), str(info.value)
    assert f"line {line}" in str(info.value)


def test_unknown_tools_are_only_checked_when_tools_are_given():
    assert parse_plan("1. anything()")[0].tool == "anything"
    with pytest.raises(PlanError, match="unknown tool 'anything'"):
        parse_plan("1. anything()", tools={"a": object()})
    openai = [{"type": "function", "function": {"name": "anything", "parameters": {}}}]
    assert parse_plan("1. anything()", tools=openai)[0].tool == "anything"


class Hit(BaseModel):
    title: str


def test_resolve_args_keeps_types_and_stringifies_inside_strings():
    tasks = parse_plan(
        "1. a()\n2. b()\n4. s()\n5. n()\n6. h()\n"
        '7. c($1, [$2, "$1"], t="n=$1 l=$2 s=${4} none=$5 hit=$6", d={"k": $1})\n'
    )
    task = tasks[-1]
    obs = {1: 3, 2: ["x", 1], 4: "str", 5: None, 6: Hit(title="t")}
    args, kwargs = resolve_args(task, obs)
    assert args == (3, [["x", 1], "3"]) and type(args[0]) is int
    assert kwargs == {"t": 'n=3 l=["x", 1] s=str none=null hit={"title": "t"}', "d": {"k": 3}}
    assert args[1][0] is obs[2]  # the observation itself, not a copy
    with pytest.raises(PlanError) as info:
        resolve_args(task, {1: 3})
    assert info.value.kind == "observation" and info.value.task == 7


def test_format_plan_round_trips():
    text = PLAN + ""
    tasks = parse_plan(text)
    out = format_plan(tasks)
    assert parse_plan(out) == tasks
    assert out.endswith("4. join()\n<END_OF_PLAN>\n")
    tricky = [
        PlanTask(1, "a", ('$5 \\ "q" \n\t\x01 é',), {"x": 1e999, "y": (1,), "z": -0.5}, frozenset()),
        PlanTask(2, "b", (RefString((TaskRef(1), "0$")),), {"r": [TaskRef(1)]}, frozenset({1}), "a\nb"),
    ]
    assert parse_plan(format_plan(tricky)) == tricky
    assert format_plan(tricky, end_of_plan=True).count("<END_OF_PLAN>") == 0  # no join, no marker
    with pytest.raises(ValueError):
        format_plan([PlanTask(1, "a", (float("nan"),))])
    with pytest.raises(ValueError):
        format_plan([PlanTask(1, "a", (), {"from": 1})])
