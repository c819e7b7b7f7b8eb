"""Forced tool calls (``tool_choice`` required or named): the grammar accepts exactly valid calls, and
text generated under it parses back."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.runtime.chat_data import (
    TIME,
    TOOLS,
    WEATHER,
)
from tether.runtime.engine.chat import (
    normalize_tools,
    parse_tool_calls,
    tool_choice_constraint,
)
from tether.runtime.engine.errors import InvalidRequestError

# --- forced tool calls: the grammar ------------------------------------------------------------------------


def _call(name: str, arguments: Any) -> str:
    return (
        f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"
    )


def _accepts(grammar: str, text: str) -> bool:
    from xgrammar.testing import _is_grammar_accept_string

    return _is_grammar_accept_string(grammar, text)


def test_named_tool_choice_grammar_accepts_exactly_valid_calls_of_that_tool() -> None:
    from xgrammar import Grammar

    constraint = tool_choice_constraint(TOOLS, {"type": "function", "function": {"name": "get_weather"}})
    assert constraint is not None and constraint.kind == "grammar"
    grammar = constraint.grammar
    assert str(Grammar.from_ebnf(grammar))  # the EBNF text parses back
    assert _accepts(grammar, _call("get_weather", {"city": "Zürich"}))
    assert _accepts(grammar, _call("get_weather", {"city": "Oslo", "unit": "f"}))
    rejected = [
        _call("get_time", {"tz": "UTC"}),  # another tool
        _call("get_weathe", {"city": "Oslo"}),  # wrong name
        _call("get_weather", {"unit": "c"}),  # required city missing
        _call("get_weather", {"city": 3}),  # wrong type
        _call("get_weather", {"city": "Oslo", "unit": "k"}),  # not in the enum
        _call("get_weather", {"city": "Oslo", "extra": 1}),  # not in the schema
        _call("get_weather", {"unit": "c", "city": "Oslo"}),  # properties out of schema order
        '<tool_call>\n{"name":"get_weather","arguments":{"city":"Oslo"}}\n</tool_call>',  # compact separators
        '<tool_call>\n{"arguments": {"city": "Oslo"}, "name": "get_weather"}\n</tool_call>',  # arguments first
        _call("get_weather", {"city": "Oslo"}).replace("\n</tool_call>", "</tool_call>"),
        _call("get_weather", {"city": "Oslo"}) + "\n",  # anything after the block
    ]
    assert [_accepts(grammar, text) for text in rejected] == [False] * len(rejected)


def test_required_tool_choice_grammar_accepts_any_one_tool() -> None:
    constraint = tool_choice_constraint(TOOLS, "required")
    assert constraint is not None and constraint.grammar is not None
    assert _accepts(constraint.grammar, _call("get_weather", {"city": "Oslo"}))
    assert _accepts(constraint.grammar, _call("get_time", {"tz": "UTC"}))
    assert not _accepts(constraint.grammar, _call("get_time", {"city": "Oslo"}))
    assert not _accepts(
        constraint.grammar, _call("get_time", {"tz": "UTC"}) + "\n" + _call("get_time", {"tz": "A"})
    )


def test_a_tool_without_parameters_is_called_with_empty_arguments() -> None:
    constraint = tool_choice_constraint(
        [{"name": "ping"}], {"type": "function", "function": {"name": "ping"}}
    )
    assert constraint is not None and constraint.grammar is not None
    assert _accepts(constraint.grammar, _call("ping", {}))
    assert not _accepts(constraint.grammar, _call("ping", {"a": 1}))


def test_parameters_with_local_refs_still_resolve() -> None:
    point = {"type": "object", "properties": {"x": {"type": "integer"}, "next": {"$ref": "#/$defs/Point"}}}
    draw = {  # pydantic's shape: $defs at the parameters' root, a recursive $ref
        "name": "draw",
        "parameters": {
            "type": "object",
            "$defs": {"Point": {**point, "required": ["x"]}},
            "properties": {"at": {"$ref": "#/$defs/Point"}},
            "required": ["at"],
        },
    }
    constraint = tool_choice_constraint([draw], "required")
    assert constraint is not None and constraint.grammar is not None
    assert _accepts(constraint.grammar, _call("draw", {"at": {"x": 1, "next": {"x": 2}}}))
    assert not _accepts(constraint.grammar, _call("draw", {"at": {"x": 1, "next": {"x": "2"}}}))


def test_a_schema_xgrammar_cannot_compile_names_the_tool() -> None:
    bad = {"name": "weird", "parameters": {"type": "object", "properties": {"x": {"type": "bogus"}}}}
    with pytest.raises(InvalidRequestError) as err:
        tool_choice_constraint([TIME, bad], "required")
    assert err.value.field == "tools[1].function.parameters"


def test_text_generated_under_the_grammar_parses_back() -> None:
    """Random walks through the grammar over an ASCII byte vocabulary: every finished walk is one valid call
    that ``parse_tool_calls`` reads back, and (string escapes such as ``\\/`` aside, which the grammar allows
    and ``json.dumps`` does not write) the canonical rendering of what it read."""
    import xgrammar as xgr
    from jsonschema import validate

    tools = [
        WEATHER,
        {
            "name": "plan",
            "parameters": {
                "type": "object",
                "properties": {
                    "days": {"type": "integer"},
                    "loud": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["days", "loud"],
            },
        },
    ]
    constraint = tool_choice_constraint(tools, "required")
    assert constraint is not None and constraint.grammar is not None
    stop = 128
    info = xgr.TokenizerInfo([chr(i) for i in range(128)] + ["</s>"], stop_token_ids=[stop])
    compiled = xgr.GrammarCompiler(info, max_threads=1).compile_grammar(constraint.grammar)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    rng = random.Random(0)
    schemas = {t.name: t.parameters for t in normalize_tools(tools)}
    names, canonical = set(), 0
    for _ in range(24):
        matcher = xgr.GrammarMatcher(compiled)
        out: list[str] = []
        while not matcher.is_terminated():
            assert len(out) < 4000, "walk did not finish"
            matcher.fill_next_token_bitmask(bitmask)
            allowed = [i for i in range(info.vocab_size) if (int(bitmask[0, i // 32]) >> (i % 32)) & 1]
            quote = ord('"')
            token = quote if quote in allowed and rng.random() < 0.3 else rng.choice(allowed)
            assert matcher.accept_token(token)
            if token != stop:
                out.append(chr(token))
        text = "".join(out)
        parsed = parse_tool_calls(text, tools)
        assert parsed.content is None and len(parsed.tool_calls) == 1, text
        call = parsed.tool_calls[0]
        validate(json.loads(call.arguments), schemas[call.name])
        names.add(call.name)
        if "\\" not in text:
            assert text == _call(call.name, json.loads(call.arguments))
            canonical += 1
    assert names == {"get_weather", "plan"} and canonical >= 12
