"""Tool arguments: random JSON values against a typed ``@tool`` give the validated model or a
``ToolArgumentError`` naming the tool and the argument, never another exception."""

from __future__ import annotations

import asyncio
import datetime
import enum
from typing import Any, Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.fuzz.counts import FUZZ, SCALE, tried
from tether.tools import ToolArgumentError, tool

pytestmark = pytest.mark.slow  # a hypothesis hunt: hundreds of generated inputs per target


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Place(BaseModel):
    city: str
    lat: float = 0.0


@tool
def forecast(
    place: Place,
    days: int,
    unit: Unit = Unit.C,
    hours: list[int] | None = None,
    weights: dict[str, float] | None = None,
    span: tuple[int, str] = (0, "d"),
    mode: Literal["fast", "exact"] = "fast",
    start: datetime.date | None = None,
    note: str = "",
) -> str:
    """Forecast.

    Args:
        place: where.
        days: how many days.
    """
    return f"{place.city}:{days}"


FIELDS = set(forecast.args_model.model_fields)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
arg_names = st.sampled_from([*FIELDS, "extra", "", "place.city"])
good = {"place": {"city": "Oslo"}, "days": 2}


def _names_an_argument(exc: ToolArgumentError, args: Any) -> bool:
    """The error's field is an argument given (an unknown name) or a path into a declared one."""
    given = {str(k) for k in args} if isinstance(args, dict) else set()
    return exc.field is None or exc.field in given or exc.field.split(".")[0] in FIELDS


def _check(args: Any) -> None:
    tried("tool_args")
    try:
        forecast.validate_args(args)
    except ToolArgumentError as exc:
        assert exc.tool == "forecast" and "forecast" in str(exc)
        assert _names_an_argument(exc, args), exc
    try:
        forecast.check_partial_args(args, {"days"}) if isinstance(args, dict) else None
    except ToolArgumentError as exc:
        assert _names_an_argument(exc, args), exc


@settings(FUZZ, max_examples=200 * SCALE)
@given(st.dictionaries(arg_names, json_values, max_size=5))
@example({"place": {"city": "x"}, "days": float("nan")})
@example({"place": {"city": "x"}, "days": 10**400})
@example({"place": {"city": "x"}, "days": 1, "start": "2024-13-45"})
@example({1: 2})
def test_random_arguments(args: dict[str, Any]) -> None:
    _check(args)


@settings(FUZZ, max_examples=150 * SCALE)
@given(st.sampled_from(sorted(FIELDS)), json_values)
def test_one_bad_field(name: str, value: Any) -> None:
    _check({**good, name: value})


@settings(FUZZ, max_examples=50 * SCALE)
@given(json_values)
@example({".": None})
def test_not_a_mapping(value: Any) -> None:
    _check(value)


def test_invoke_survives_bad_arguments() -> None:
    async def run() -> str:
        try:
            await forecast.invoke({"place": "Oslo", "days": 1})
        except ToolArgumentError as exc:
            assert exc.field == "place"
        return await forecast.invoke(good)

    assert asyncio.run(run()) == "Oslo:2"
