"""``Tool.invoke``: async tools on the loop, sync tools in the tool thread pool, errors wrapped with the
tool's name, results checked against the return annotation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tether.tools import ToolArgumentError, ToolExecutionError, tool
from tether.tools.errors import ToolResultError, ToolTimeoutError


@tool
def where_sync(tag: str) -> str:
    return f"{tag}:{threading.current_thread().name}"


@tool
async def where_async(tag: str) -> str:
    await asyncio.sleep(0)
    return f"{tag}:{threading.current_thread().name}"


@tool
def broken(x: int) -> int:
    raise ValueError(f"no good: {x}")


@tool
async def raises_tool_error(x: int) -> int:
    raise ToolTimeoutError("inner", 1.0)


@tool
def liar(x: int) -> int:
    return "not an int"  # type: ignore[return-value]


@tool
def widening(x: int) -> float:
    return x


async def test_sync_tools_run_in_the_tool_thread_pool() -> None:
    out = await where_sync.invoke({"tag": "s"})
    assert out.startswith("s:tether-tool")
    assert where_sync.is_async is False


async def test_async_tools_run_on_the_event_loop() -> None:
    assert await where_async.invoke({"tag": "a"}) == f"a:{threading.current_thread().name}"
    assert where_async.is_async is True


async def test_sync_tools_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def meet(i: int) -> int:
        barrier.wait()  # all three must be inside at once, or this raises BrokenBarrierError
        return i

    assert await asyncio.gather(*(meet.invoke({"i": i}) for i in range(3))) == [0, 1, 2]


async def test_a_failing_tool_is_wrapped_with_its_name_and_cause() -> None:
    with pytest.raises(ToolExecutionError) as info:
        await broken.invoke({"x": 7})
    err = info.value
    assert str(err) == "tool 'broken' failed: ValueError: no good: 7"
    assert err.tool == "broken" and err.cause_type == "ValueError" and isinstance(err.cause, ValueError)


async def test_tool_errors_pass_through_unwrapped() -> None:
    with pytest.raises(ToolTimeoutError, match="tool 'inner' timed out after 1 s"):
        await raises_tool_error.invoke({"x": 1})


async def test_invalid_arguments_never_reach_the_function() -> None:
    with pytest.raises(ToolArgumentError, match="argument 'x'"):
        await broken.invoke({"x": "7"})


async def test_results_are_checked_against_the_annotation() -> None:
    with pytest.raises(ToolResultError, match="tool 'liar' returned a value that fails its return type"):
        await liar.invoke({"x": 1})
    out = await widening.invoke({"x": 2})
    assert out == 2.0 and isinstance(out, float)


def test_remote_errors_carry_their_text() -> None:
    err = ToolExecutionError("search", "connection refused", cause_type="OSError", call_id="p/n#1")
    assert str(err) == "tool 'search' failed (call p/n#1): OSError: connection refused"
