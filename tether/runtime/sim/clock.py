"""Clocks the replay driver and the engine share: real time, or a virtual clock a simulation advances."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None:
        """Idle until ``t`` (the engine has nothing to do before then)."""
        ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Time moves only when the simulation says so: a step's modelled duration, or a jump to the next event."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError(f"cannot go back in time by {dt}")
        self._now += dt

    def sleep_until(self, t: float) -> None:
        self._now = max(self._now, t)
