"""Checks of one setting's value, each a function for ``AfterValidator`` whose ``ValueError`` says what is wrong
(``must be >= 1``); ``SettingsError`` adds which setting, where it came from and the value given."""

from __future__ import annotations

from collections.abc import Callable

Number = int | float


def at_least(low: Number) -> Callable[[Number], Number]:
    def check(value: Number) -> Number:
        if value < low:
            raise ValueError(f"must be >= {low}, got {value}")
        return value

    return check


def above(low: Number) -> Callable[[Number], Number]:
    def check(value: Number) -> Number:
        if value <= low:
            raise ValueError(f"must be > {low:g}, got {value}")
        return value

    return check


def at_most(high: Number) -> Callable[[Number], Number]:
    def check(value: Number) -> Number:
        if value > high:
            raise ValueError(f"must be <= {high:g}, got {value}")
        return value

    return check


def power_of_two(value: int) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"must be a power of two, got {value}")
    return value
