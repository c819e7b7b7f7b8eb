"""``LocalToolRunner``: per-tool concurrency limits, timeouts, duration statistics."""

from __future__ import annotations

import asyncio

import pytest

from tether.tools import LocalToolRunner, ToolRegistry, ToolTimeoutError, UnknownToolError, tool
from tether.tools.durations import ToolDurationStats
from tether.tools.runner import ToolRunner


class Gauge:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def hold(self, seconds: float) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


async def test_max_concurrency_caps_calls_in_flight() -> None:
    limited_gauge, free_gauge = Gauge(), Gauge()

    @tool(max_concurrency=2)
    async def limited(i: int) -> int:
        await limited_gauge.hold(0.02)
        return i

    @tool
    async def free(i: int) -> int:
        await free_gauge.hold(0.02)
        return i

    runner = LocalToolRunner(ToolRegistry([limited, free]))
    assert isinstance(runner, ToolRunner)
    calls = [
        runner.call(name, {"i": i}, call_id=f"{name}{i}") for name in ("limited", "free") for i in range(6)
    ]
    assert await asyncio.gather(*calls) == list(range(6)) * 2
    assert limited_gauge.peak == 2
    assert free_gauge.peak == 6
    await runner.close()


async def test_durations_are_recorded_for_the_scheduler() -> None:
    @tool
    def quick(x: int) -> int:
        return x

    stats = ToolDurationStats(min_samples=3)
    runner = LocalToolRunner(ToolRegistry([quick]), stats)
    for i in range(3):
        assert await runner.call("quick", {"x": i}, call_id=str(i)) == i
    assert stats.count("quick") == 3 and stats.source("quick") == "tool"
    assert runner.calls == 3


async def test_timeout_raises_a_typed_error_naming_the_call() -> None:
    @tool
    async def slow() -> None:
        await asyncio.sleep(10)

    stats = ToolDurationStats()
    runner = LocalToolRunner(ToolRegistry([slow]), stats)
    with pytest.raises(ToolTimeoutError) as info:
        await runner.call("slow", {}, call_id="prog/node#1", timeout=0.05)
    assert str(info.value) == "tool 'slow' timed out after 0.05 s (call prog/node#1)"
    assert info.value.call_id == "prog/node#1" and info.value.timeout == 0.05
    assert stats.count("slow") == 0  # a call that did not return is not a duration


async def test_unknown_tool() -> None:
    with pytest.raises(UnknownToolError, match="unknown tool 'nope'"):
        await LocalToolRunner(ToolRegistry()).call("nope", {}, call_id="c")
