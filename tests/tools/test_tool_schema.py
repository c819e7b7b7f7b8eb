"""``@tool``: the argument schema from type hints and docstrings, strict validation with clear errors, typed
results and their JSON round trip."""

from __future__ import annotations

import enum

import pytest
from pydantic import BaseModel

from tether.tools import Tool, ToolArgumentError, tool
from tether.tools.errors import ToolDefinitionError, ToolResultError


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str = "FR"


class Reading(BaseModel):
    place: Place
    degrees: float


@tool
def weather(place: Place, unit: Unit = Unit.C, window: tuple[int, int] = (0, 24)) -> Reading:
    """Read the weather.

    Looks the place up first.

    Args:
        place: where to read it.
        unit (Unit): the scale
            of the reading.
        window: first and last hour.

    Returns:
        the reading.
    """
    return Reading(place=place, degrees=21 if unit is Unit.C else 70)


@tool(name="sphinx-style", description="Overridden.")
def sphinx(a: int, b: str = "x") -> None:
    """Ignored summary.

    :param a: the first.
    :param str b: the second.
    """


@tool
def numpy_style(a: int, b: list[str]) -> int:
    """Numpy style.

    Parameters
    ----------
    a : int
        The first,
        continued.
    b : list of str
        The second.
    """
    return a


@tool
def untyped(x):  # noqa: ANN001, ANN201 - no annotations on purpose
    return {"x": x}


def test_schema_comes_from_hints_and_docstring() -> None:
    schema = weather.input_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["place"]
    assert schema["description"] == "Read the weather. Looks the place up first."
    assert weather.description == "Read the weather. Looks the place up first."
    props = schema["properties"]
    assert props["place"]["$ref"] == "#/$defs/Place"
    assert props["unit"]["default"] == "celsius"
    assert props["unit"]["description"] == "the scale of the reading."
    assert props["window"]["prefixItems"] == [{"type": "integer"}, {"type": "integer"}]
    assert schema["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]
    assert weather.output_schema()["$defs"]["Place"]["required"] == ["city"]


def test_sphinx_and_numpy_docstrings() -> None:
    assert sphinx.name == "sphinx-style" and sphinx.description == "Overridden."
    assert {k: v.get("description") for k, v in sphinx.input_schema()["properties"].items()} == {
        "a": "the first.",
        "b": "the second.",
    }
    assert {k: v["description"] for k, v in numpy_style.input_schema()["properties"].items()} == {
        "a": "The first, continued.",
        "b": "The second.",
    }
    assert numpy_style.description == "Numpy style."


def test_json_shaped_arguments_validate() -> None:
    args = weather.validate_args({"place": {"city": "Lyon"}, "unit": "fahrenheit", "window": [6, 18]})
    assert args.place == Place(city="Lyon") and args.unit is Unit.F and args.window == (6, 18)
    typed = weather.validate_args({"place": Place(city="Nice"), "unit": Unit.C})
    assert typed.place == Place(city="Nice") and typed.unit is Unit.C


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        ({}, "place", "missing required argument"),
        ({"place": {"city": "Lyon"}, "extra": 1}, "extra", "unexpected argument"),
        ({"place": {"city": 3}}, "place.city", "Input should be a valid string (got 3)"),
        (
            {"place": {"city": "Lyon"}, "window": ["6", 18]},
            "window.0",
            "Input should be a valid integer (got '6')",
        ),
        ({"place": {"city": "Lyon"}, "unit": "kelvin"}, "unit", "Input should be 'celsius' or 'fahrenheit'"),
    ],
)
def test_invalid_arguments_name_the_field(args: dict, field: str, reason: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        weather.validate_args(args)
    assert info.value.tool == "weather" and info.value.field == field
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith(f"tool 'weather': argument '{field}': {reason}")


def test_strict_means_no_coercion() -> None:
    with pytest.raises(ToolArgumentError, match="valid integer"):
        numpy_style.validate_args({"a": "3", "b": []})
    with pytest.raises(ToolArgumentError, match="valid integer"):
        numpy_style.validate_args({"a": 3.5, "b": []})
    assert numpy_style.validate_args({"a": 3, "b": ["x"]}).a == 3


def test_arguments_must_be_a_mapping() -> None:
    with pytest.raises(ToolArgumentError, match="expected a mapping of arguments, got list"):
        weather.validate_args([1])  # type: ignore[arg-type]


def test_results_round_trip_through_json() -> None:
    value = weather(Place(city="Lyon"))
    data = weather.dump_result(value)
    assert data == {"place": {"city": "Lyon", "country": "FR"}, "degrees": 21.0}
    assert weather.load_result(data) == value and isinstance(weather.load_result(data), Reading)
    with pytest.raises(ToolResultError, match="tool 'weather'"):
        weather.load_result({"degrees": 3})


def test_unannotated_tool() -> None:
    assert untyped.output_schema() is None
    assert untyped.input_schema()["properties"] == {"x": {"title": "X"}}
    assert untyped.dump_result({"x": (1, 2)}) == {"x": [1, 2]}
    assert untyped.load_result([1]) == [1]


def test_tool_stays_callable_and_keeps_its_identity() -> None:
    assert isinstance(weather, Tool)
    assert weather(Place(city="Lyon"), Unit.F).degrees == 70
    assert weather.__name__ == "weather" and weather.__doc__.startswith("Read the weather.")
    assert not weather.is_async and weather.max_concurrency is None


def test_bad_definitions_are_rejected() -> None:
    with pytest.raises(ToolDefinitionError, match=r"\*args"):
        tool(lambda *a: None, name="star")
    with pytest.raises(ToolDefinitionError, match="bad tool name 'a/b'"):
        tool(lambda x: x, name="a/b")
    with pytest.raises(ToolDefinitionError, match="max_concurrency must be >= 1"):
        tool(lambda x: x, name="zero", max_concurrency=0)


def test_partial_arguments_are_checked_before_a_run() -> None:
    weather.check_partial_args({"place": "${x.output}", "unit": "celsius"}, {"place"})
    weather.check_partial_args({"place": {"city": "Lyon"}, "window": [1, 2]}, set())
    with pytest.raises(ToolArgumentError, match="argument 'place.city': Input should be a valid string"):
        weather.check_partial_args({"place": {"city": 3}}, set())
    with pytest.raises(ToolArgumentError, match="argument 'unit': Input should be 'celsius' or 'fahrenheit'"):
        weather.check_partial_args({"place": "${x.output}", "unit": "kelvin"}, {"place"})
    with pytest.raises(ToolArgumentError, match="argument 'place': missing required argument"):
        weather.check_partial_args({"unit": "celsius"}, set())
    with pytest.raises(
        ToolArgumentError, match=r"argument 'when': unexpected argument \(expected one of: place"
    ):
        weather.check_partial_args({"place": "${x.output}", "when": 1}, {"place"})
