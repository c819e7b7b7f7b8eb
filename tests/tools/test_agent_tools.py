"""``examples/agent_tools.py``: the local tools of the agent examples and the planner-vs-ReAct benchmark."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from examples import agent_tools as at
from tether.tools import LocalToolRunner, ToolArgumentError, ToolRegistry


@pytest.fixture(autouse=True)
def no_latency(no_tool_latency: None) -> None:
    """Every test here runs the example tools without their latency (tests/conftest.py)."""


def call(name: str, **args: Any) -> Any:
    registry = at.register_agent_tools(ToolRegistry())
    return asyncio.run(LocalToolRunner(registry).call(name, args, call_id="t"))


# -- search_docs / read_doc -------------------------------------------------------------------------------------
def test_docs_ship_with_the_examples() -> None:
    docs = at.load_docs()
    assert 10 <= len(docs) <= 15
    assert {"cities_americas", "elements_metals", "mountains_himalaya", "units", "people"} <= set(docs)


def test_search_ranks_the_document_that_holds_the_terms_first() -> None:
    hits = call("search_docs", query="Quito elevation", k=3)
    assert [type(h) for h in hits] == [at.Hit] * 3
    assert hits[0].doc_id == "cities_americas"
    assert hits[0].title == "High cities of the Americas"
    assert "2850 m" in hits[0].snippet and "Quito" in hits[0].snippet
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert call("search_docs", query="atomic mass of gold", k=1)[0].doc_id == "elements_metals"
    hits = call("search_docs", query="first ascent of Everest Hillary")
    assert [h.doc_id for h in hits] == ["people", "mountains_himalaya", "mountains_summits"]


def test_search_is_deterministic_and_leaves_out_unrelated_documents() -> None:
    assert at.search("Mendeleev periodic table", 5) == at.search("Mendeleev periodic table", 5)
    hits = at.search("Mendeleev", 5)
    assert [h.doc_id for h in hits] == ["people"]


def test_search_errors() -> None:
    with pytest.raises(at.DocumentError, match="no searchable words"):
        call("search_docs", query="the of and")
    with pytest.raises(at.DocumentError, match="k must be >= 1, got 0"):
        call("search_docs", query="Paris", k=0)


def test_read_doc_returns_the_file_and_names_known_ids_on_a_miss() -> None:
    text = call("read_doc", doc_id="cities_nordic")
    assert text == (at.DOCS_DIR / "cities_nordic.md").read_text()
    assert "Oslo" in text and "717,710" in text
    with pytest.raises(at.DocumentError, match=r"no document 'atlantis' \(known: cities_africa_asia, "):
        call("read_doc", doc_id="atlantis")


def test_the_docs_state_the_table_values() -> None:
    text = "\n".join(at.load_docs().values())
    for name, row in at.load_table("cities").items():
        assert f"{name} is a city in {row['country']}. It has a population of {row['population']:,}" in text
        assert f"elevation of {row['elevation_m']} m" in text
    for name, row in at.load_table("mountains").items():
        assert f"{name} rises to {row['height_m']:,} m in {row['country']}" in text


# -- calculator -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expression, value",
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("-2 ** 2", -4.0),
        ("2 ** -1", 0.5),
        ("7 % 3", 1.0),
        ("10 / 4", 2.5),
        ("-(3 - 5)", 2.0),
        ("+4", 4.0),
        ("2,102,650 + 3,878,100", 5980750.0),
        ("1.5e3 / 3", 500.0),
    ],
)
def test_calculator_values(expression: str, value: float) -> None:
    assert call("calculator", expression=expression) == value


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os')", "unsupported Call"),
        ("x + 1", "unsupported Name"),
        ("2 ^ 3", r"unsupported BitXor .*use \*\* for powers"),
        ("1 // 2", "unsupported FloorDiv"),
        ("True + 1", "unsupported Constant"),
        ("'a' * 3", "unsupported Constant"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("10 ** 400", "overflows"),
        ("9 ** 9 ** 9", "overflows"),
        ("1e308 * 10", "no finite real value"),
        ("(-8) ** 0.5", "no finite real value"),
        ("1 +", "cannot parse"),
        ("1" * 501, "longer than 500"),
    ],
)
def test_calculator_errors(expression: str, message: str) -> None:
    with pytest.raises(at.ExpressionError, match=message) as info:
        call("calculator", expression=expression)
    assert info.value.tool == "calculator"


# -- convert_units ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, src, dst, expected",
    [
        (1, "mi", "ft", 5280.0),
        (1, "mi", "m", 1609.344),
        (1000, "ft", "m", 304.8),
        (2.5, "km", "m", 2500.0),
        (1, "lb", "kg", 0.45359237),
        (1, "kg", "g", 1000.0),
        (100, "C", "F", 212.0),
        (-40, "F", "C", -40.0),
        (0, "K", "C", -273.15),
        (32, "°F", "kelvin", 273.15),
        (90, "min", "h", 1.5),
        (2, "hours", "s", 7200.0),
        (3, "Feet", "feet", 3.0),
    ],
)
def test_convert_units_values(value: float, src: str, dst: str, expected: float) -> None:
    assert math.isclose(
        call("convert_units", value=value, from_unit=src, to_unit=dst), expected, rel_tol=1e-12
    )


def test_convert_units_errors() -> None:
    with pytest.raises(at.UnitError, match=r"cannot convert 'kg' \(mass\) to 'm' \(length\)"):
        call("convert_units", value=1.0, from_unit="kg", to_unit="m")
    with pytest.raises(at.UnitError, match=r"unknown unit 'parsec' \(known: m, km"):
        call("convert_units", value=1.0, from_unit="parsec", to_unit="m")
    with pytest.raises(at.UnitError, match="below absolute zero"):
        call("convert_units", value=-300.0, from_unit="C", to_unit="F")
    with pytest.raises(ToolArgumentError, match="value"):
        call("convert_units", value="1", from_unit="m", to_unit="ft")


# -- lookup -----------------------------------------------------------------------------------------------------
def test_lookup_values_and_types() -> None:
    assert call("lookup", table="cities", key="Paris", field="population") == 2102650
    assert call("lookup", table="cities", key="la paz", field="elevation_m") == 3640
    assert call("lookup", table="cities", key="Athens", field="area_km2") == 38.96
    assert call("lookup", table="cities", key="Quito", field="country") == "Ecuador"
    assert call("lookup", table="elements", key="Gold", field="atomic_mass") == 196.97
    assert call("lookup", table="mountains", key="K2", field="height_m") == 8611
    assert type(call("lookup", table="elements", key="Iron", field="atomic_number")) is int
    assert at.table_names() == ["cities", "elements", "mountains"]


def test_lookup_errors_name_table_key_and_field() -> None:
    with pytest.raises(at.LookupMissError, match=r"no table 'rivers' \(known: cities, elements, mountains\)"):
        call("lookup", table="rivers", key="Nile", field="length_km")
    with pytest.raises(at.LookupMissError, match=r"table 'cities' has no key 'Atlantis' \(keys: Paris, "):
        call("lookup", table="cities", key="Atlantis", field="population")
    with pytest.raises(at.LookupMissError, match=r"table 'cities' has no field 'gdp' \(fields: country, pop"):
        call("lookup", table="cities", key="Paris", field="gdp")
    with pytest.raises(at.LookupMissError, match="no field 'name'"):
        call("lookup", table="cities", key="Paris", field="name")


# -- schemas, registration, latency -----------------------------------------------------------------------------
def test_schemas_name_the_arguments() -> None:
    assert [t.name for t in at.AGENT_TOOLS] == [
        "search_docs",
        "read_doc",
        "calculator",
        "convert_units",
        "lookup",
    ]
    required = {t.name: t.input_schema().get("required") for t in at.AGENT_TOOLS}
    assert required == {
        "search_docs": ["query"],
        "read_doc": ["doc_id"],
        "calculator": ["expression"],
        "convert_units": ["value", "from_unit", "to_unit"],
        "lookup": ["table", "key", "field"],
    }
    for t in at.AGENT_TOOLS:
        schema = t.input_schema()
        assert schema["additionalProperties"] is False
        assert t.description and schema["description"] == t.description
        assert all(p.get("description") for p in schema["properties"].values())
    search = at.search_docs.input_schema()["properties"]
    assert search["k"] == {"default": 3, "description": "how many hits to return, best first.", "title": "K",
                           "type": "integer"}  # fmt: skip
    assert at.convert_units.input_schema()["properties"]["value"]["type"] == "number"
    assert at.calculator.output_schema() == {"type": "number"}
    assert at.search_docs.output_schema()["type"] == "array"
    lookup_types = {s["type"] for s in at.lookup.output_schema()["anyOf"]}
    assert lookup_types == {"string", "number", "integer"}


def test_registration_and_loading_by_path() -> None:
    registry = at.register_agent_tools(ToolRegistry())
    assert registry.names() == sorted(t.name for t in at.AGENT_TOOLS)
    loaded = ToolRegistry().load(str(at.HERE / "agent_tools.py"))
    assert [t.name for t in loaded] == ["calculator", "convert_units", "lookup", "read_doc", "search_docs"]


def test_latency_is_seeded_by_the_call_and_off_when_none() -> None:
    assert at.latency_s("lookup", {"key": "Paris"}) == at.latency_s("lookup", {"key": "Paris"})
    draws = [at.latency_s("lookup", {"key": str(i)}) for i in range(400)]
    median = sorted(draws)[200]
    assert 0.25 < median < 0.35 and len(set(draws)) == 400
    assert all(d > 0 for d in draws)
    start = time.perf_counter()
    for _ in range(20):
        call("lookup", table="cities", key="Paris", field="population")
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ValueError, match="'realistic' or 'none'"):
        at.set_latency("slow")


def test_realistic_latency_sleeps_the_drawn_time(monkeypatch: pytest.MonkeyPatch) -> None:
    at.set_latency("realistic")
    monkeypatch.setitem(at.LATENCY_MEDIAN_S, "calculator", 0.05)
    expected = at.latency_s("calculator", {"expression": "1 + 1"})
    start = time.perf_counter()
    assert call("calculator", expression="1 + 1") == 2.0
    assert time.perf_counter() - start >= expected * 0.95
