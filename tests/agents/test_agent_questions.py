"""``bench/agent_questions.py``: ParallelQA-like questions, answers recomputed through the tools."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.agent_questions import (
    TEMPLATES,
    Lookup,
    Question,
    check_answer,
    extract_name,
    extract_number,
    make_questions,
)
from examples import agent_tools as at
from tether.tools import LocalToolRunner, ToolRegistry


@pytest.fixture(autouse=True)
def no_latency(no_tool_latency: None) -> None:
    """Every test here runs the example tools without their latency (tests/conftest.py)."""


async def solve(question: Question, runner: LocalToolRunner) -> Any:
    """Answer like an agent would: the k lookups in parallel, then the combining step with the tools."""
    values = await asyncio.gather(
        *(runner.call("lookup", lk._asdict(), call_id=f"l{i}") for i, lk in enumerate(question.lookups))
    )
    if question.kind in ("max", "min"):
        pick = max if question.kind == "max" else min
        return pick(zip(values, question.options))[1]
    if question.kind == "convert_sum":
        values = await asyncio.gather(
            *(runner.call("convert_units", {"value": float(v), "from_unit": "m", "to_unit": "ft"}, call_id="c")
              for v in values)
        )  # fmt: skip
    total = await runner.call("calculator", {"expression": " + ".join(repr(v) for v in values)}, call_id="s")
    if question.kind == "mean":
        return await runner.call("calculator", {"expression": f"{total!r} / {len(values)}"}, call_id="m")
    return total


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
async def test_expected_answers_match_the_tools(k: int) -> None:
    runner = LocalToolRunner(at.register_agent_tools(ToolRegistry()))
    questions = make_questions(k, 60, seed=7)
    assert len(questions) == 60
    for q in questions:
        got = await solve(q, runner)
        if isinstance(q.expected, str):
            assert got == q.expected, q.text
        else:
            assert got == pytest.approx(q.expected, rel=1e-9, abs=1e-6), q.text
        assert check_answer(q, f"Answer: {got}")


@pytest.mark.parametrize("k", [2, 4, 6])
def test_k_distinct_lookups_named_in_the_text(k: int) -> None:
    for q in make_questions(k, 50, seed=1):
        assert q.k == k and len(q.lookups) == k
        assert len({lk.key for lk in q.lookups}) == k
        assert len({(lk.table, lk.field) for lk in q.lookups}) == 1
        assert all(isinstance(lk, Lookup) for lk in q.lookups)
        positions = [q.text.index(lk.key) for lk in q.lookups]
        assert positions == sorted(positions)
        if q.kind in ("max", "min"):
            assert q.expected in q.options
        else:
            assert isinstance(q.expected, float)


def test_every_kind_and_template_is_used_and_questions_are_distinct() -> None:
    questions = make_questions(3, 300, seed=0)
    assert {q.kind for q in questions} == {"sum", "mean", "max", "min", "convert_sum"}
    assert {(q.kind, q.lookups[0].table, q.lookups[0].field) for q in questions} == {
        (t.kind, t.table, t.field) for t in TEMPLATES
    }
    assert len({(q.text, q.kind) for q in questions}) == 300


def test_no_ties_for_max_and_min() -> None:
    for q in make_questions(6, 200, seed=3):
        if q.kind in ("max", "min"):
            values = [at.lookup_value(*lk) for lk in q.lookups]
            target = max(values) if q.kind == "max" else min(values)
            assert values.count(target) == 1


def test_deterministic_for_a_seed() -> None:
    assert make_questions(4, 25, seed=11) == make_questions(4, 25, seed=11)
    assert make_questions(4, 25, seed=11) != make_questions(4, 25, seed=12)
    assert make_questions(4, 10, seed=11) == make_questions(4, 25, seed=11)[:10]
    assert make_questions(3, 0, seed=0) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"k must be in 2\.\.6, got 1"):
        make_questions(1, 3, seed=0)
    with pytest.raises(ValueError, match=r"k must be in 2\.\.6, got 7"):
        make_questions(7, 3, seed=0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        make_questions(3, -1, seed=0)


POPULATION = Question(
    text="What is the total population of Paris, Berlin and Madrid?",
    k=3,
    expected=2102650 + 3878100 + 3332035.0,
    kind="sum",
    lookups=tuple(Lookup("cities", c, "population") for c in ("Paris", "Berlin", "Madrid")),
)
HIGHEST = Question(
    text="Which of Paris, Quito, La Paz and Bogota has the highest elevation?",
    k=4,
    expected="La Paz",
    kind="max",
    lookups=tuple(Lookup("cities", c, "elevation_m") for c in ("Paris", "Quito", "La Paz", "Bogota")),
)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("9312785", True),
        ("The total population is 9,312,785.", True),
        ("Paris (2,102,650), Berlin (3,878,100) and Madrid (3,332,035) make 9,312,785 people.", True),
        ("About 9.3 million people.", True),
        ("Answer: 9.31 million (from 3 lookups)", True),
        ("**Final answer:** 9,300,000", True),
        ("I added 3 numbers. The answer is 9312785.0", True),
        ("9,500,000", False),
        ("Paris has 2,102,650 people.", False),
        ("Answer: 3 cities, total 9312785", False),
        ("I could not find it.", False),
        ("", False),
    ],
)
def test_check_numeric_answers(text: str, ok: bool) -> None:
    assert check_answer(POPULATION, text) is ok


@pytest.mark.parametrize(
    "text, ok",
    [
        ("La Paz", True),
        ("la paz", True),
        ("LA PAZ has the highest elevation, above Quito.", True),
        ("Quito is at 2850 m and Bogota at 2640 m. La Paz is highest, at 3640 m.", True),
        ("Comparing Quito and La Paz... Answer: La Paz", True),
        ("Quito", False),
        ("Answer: Quito, not La Paz", False),
        ("Paris", False),
        ("The highest is Lapaz.", False),
        ("3640", False),
        ("", False),
    ],
)
def test_check_name_answers(text: str, ok: bool) -> None:
    assert check_answer(HIGHEST, text) is ok


def test_extractors() -> None:
    assert extract_number("-2 m and 1.5e3") == 1500.0
    assert extract_number("elevation −2 m") == -2.0
    assert extract_number("K2 is tall") is None
    assert extract_number("answer: none; earlier 12") == 12.0
    assert extract_name("Bogotá is higher than Paris", ("Paris", "Bogota")) == "Bogota"
    assert extract_name("nothing here", ("Paris",)) is None
