"""``ProgramHints`` is the one hints type from the DAG compiler to the engine: ``LLMHints`` is the same class,
``next_tool`` is the first of ``next_tools``, and the engine receives every field (prefix group included)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tether.dag import LLMHints, ProgramHints
from tether.hints import ProgramHints as HintsType


def test_one_type_under_both_names():
    assert LLMHints is ProgramHints is HintsType
    from tether.runtime.engine.sequence import ProgramHints as EngineHints

    assert EngineHints is ProgramHints


def test_next_tool_is_accepted_and_read_as_the_first_of_next_tools():
    h = ProgramHints("p", 2, next_tool="bash", last_turn=True)
    assert h.next_tools == ("bash",) and h.next_tool == "bash" and h.turn == 2
    assert h == ProgramHints(program_id="p", turn=2, next_tools=("bash",), last_turn=True)
    assert ProgramHints(next_tool="a", next_tools=("a", "b")).next_tools == ("a", "b")
    assert ProgramHints().next_tool is None and ProgramHints().program_id is None
    with pytest.raises(ValueError, match="first of next_tools"):
        ProgramHints(next_tool="b", next_tools=("a", "b"))


def test_frozen_hashable_and_replace_keeps_every_field():
    h = LLMHints(turn=1, remaining_turns=2, next_tools=("search", "fetch"), prefix_group="prefix-0")
    full = replace(h, program_id="run-1")
    assert full == ProgramHints(
        "run-1", 1, remaining_turns=2, next_tools=("search", "fetch"), prefix_group="prefix-0"
    )
    assert hash(full) == hash(replace(full)) and full.next_tool == "search"
    with pytest.raises(AttributeError):
        full.turn = 3  # type: ignore[misc]


def test_the_local_engine_backend_passes_the_hints_through_whole():
    from tether.runtime.executor.backends.local_engine import program_hints
    from tether.runtime.executor.llm import LLMRequest

    hints = LLMHints(turn=1, remaining_turns=0, last_turn=True, next_tools=("a", "b"), prefix_group="prefix-1")
    got = program_hints(LLMRequest(program_id="wf", node_id="n", prompt="hi", hints=hints))
    assert got == replace(hints, program_id="wf")
