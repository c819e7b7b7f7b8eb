"""Tools served by the MQTT tests' workers (in process, and by ``tether worker`` subprocesses)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

from tether.tools.tool import tool

RUNS: dict[str, int] = {}


class Point(BaseModel):
    x: int
    y: int


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def point(x: int) -> Point:
    """A point on the diagonal."""
    return Point(x=x, y=x)


@tool
async def noop() -> None:
    """Do nothing (round-trip benchmarks)."""


@tool
def divide(a: float, b: float) -> float:
    """Divide; fails on zero."""
    return a / b


@tool
async def count(key: str) -> int:
    """Count the runs of ``key`` in this process and return the count."""
    RUNS[key] = RUNS.get(key, 0) + 1
    return RUNS[key]


@tool
async def slow(seconds: float, marker: str = "") -> int:
    """Sleep, appending 'start PID' and 'end PID' lines to the file ``marker``; returns this process's pid."""
    if marker:
        with Path(marker).open("a") as f:
            f.write(f"start {os.getpid()}\n")
    await asyncio.sleep(seconds)
    if marker:
        with Path(marker).open("a") as f:
            f.write(f"end {os.getpid()}\n")
    return os.getpid()
