"""Decorator tool calls take their own options, as YAML nodes do: ``tool.options(timeout=..., retry=...)(args)``
(``timeout`` seconds per attempt, ``retry`` a ``RetryPolicy``, its attempts or its fields); bad values are
``AgentArgumentError``s naming the tool, the option and the agent's line; ``llm()`` takes the same two."""

from __future__ import annotations

import asyncio

import pytest

from tests.executor.conftest import ScriptedLLM
from tether.agents.decorator import AgentArgumentError, agent, llm
from tether.agents.runtime import AgentRuntime
from tether.dag import RetryPolicy, ToolCall
from tether.runtime.executor import NodeFailedError
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import ToolError, ToolTimeoutError, tool

FLAKY_CALLS: list[int] = []


@tool
async def slow(seconds: float) -> float:
    """Sleep, then return how long."""
    await asyncio.sleep(seconds)
    return seconds


@tool
async def flaky(x: int) -> int:
    """Fails on its first two calls, then doubles ``x``."""
    FLAKY_CALLS.append(x)
    if len(FLAKY_CALLS) <= 2:
        raise ToolError(f"flaky failure {len(FLAKY_CALLS)}", tool="flaky")
    return 2 * x


async def runtime(sink: MemoryTraceSink) -> AgentRuntime:
    return await AgentRuntime.create([slow, flaky], backend=ScriptedLLM({"llm_3": "ok"}), trace=sink)


async def test_a_slow_tool_times_out_with_the_typed_error_naming_node_and_tool():
    sink = MemoryTraceSink()
    rt = await runtime(sink)

    @agent
    async def waits() -> float:
        return await slow.options(timeout=0.05)(seconds=2.0)

    with pytest.raises(NodeFailedError) as info:
        await waits.run(runtime=rt)
    await rt.close()
    assert info.value.node == "slow_1" and isinstance(info.value.cause, ToolTimeoutError)
    assert str(info.value.cause).startswith("tool 'slow' timed out after 0.05 s")
    calls = [(e.node_id, e.attrs["attempt"], e.attrs["status"]) for e in sink.of_kind("tool_call")]
    assert calls == [("slow_1", 1, "timeout")]


async def test_a_flaky_tool_succeeds_on_retry_with_the_attempts_recorded():
    FLAKY_CALLS.clear()
    sink = MemoryTraceSink()
    rt = await runtime(sink)

    @agent
    async def retries() -> int:
        return await flaky.options(retry=3, timeout=5)(21)

    run = await retries.execute(runtime=rt)
    await rt.close()
    assert run.value == 42
    node = run.program.nodes["flaky_1"]
    assert isinstance(node, ToolCall) and (node.retry, node.timeout) == (RetryPolicy(attempts=3), 5.0)
    calls = [(e.attrs["attempt"], e.attrs["status"]) for e in sink.of_kind("tool_call")]
    assert calls == [(1, "error"), (2, "error"), (3, "ok")]


async def test_retry_as_a_policy_or_its_fields_and_options_that_add_up():
    rt = await runtime(MemoryTraceSink())

    @agent
    async def several() -> list:
        a = slow.options(retry={"attempts": 2, "backoff_s": 0.01})(0.0)
        b = slow.options(timeout=1).options(retry=RetryPolicy(attempts=4, on=("timeout",)))(0.0)
        c = llm("hi", retry=2, timeout=3)
        return [await a, await b, await c]

    run = await several.execute(runtime=rt)
    await rt.close()
    assert run.value == [0.0, 0.0, "ok"]
    nodes = run.program.nodes
    assert (
        nodes["slow_1"].retry == RetryPolicy(attempts=2, backoff_s=0.01) and nodes["slow_1"].timeout is None
    )
    assert (nodes["slow_2"].timeout, nodes["slow_2"].retry) == (1.0, RetryPolicy(attempts=4, on=("timeout",)))
    assert (nodes["llm_3"].retry, nodes["llm_3"].timeout) == (RetryPolicy(attempts=2), 3.0)
    assert await slow.options(timeout=1)(0.0) == 0.0  # outside an agent: a plain call


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "tool 'slow': option 'timeout' must be a number of seconds > 0, got 0"),
        ({"timeout": "2"}, "tool 'slow': option 'timeout' must be a number of seconds > 0, got '2'"),
        ({"timeout": True}, "tool 'slow': option 'timeout' must be a number of seconds > 0, got True"),
        ({"retry": 0}, "tool 'slow': option 'retry' (attempts in all) must be >= 1, got 0"),
        (
            {"retry": {"attempts": 0}},
            "tool 'slow': option 'retry.attempts': Input should be greater than or equal",
        ),
        ({"retry": {"tries": 2}}, "tool 'slow': option 'retry.tries': Extra inputs are not permitted"),
        (
            {"retry": "3"},
            "tool 'slow': option 'retry' must be a RetryPolicy, an int (attempts) or a mapping, got '3'",
        ),
        ({"retries": 3}, "tool 'slow': unknown option 'retries' (options: timeout, retry)"),
    ],
)
async def test_bad_options_are_typed_errors_naming_the_tool_and_the_line(options, message):
    rt = await runtime(MemoryTraceSink())

    @agent
    async def bad() -> float:
        return await slow.options(**options)(0.0)

    with pytest.raises(AgentArgumentError) as info:
        await bad.run(runtime=rt)
    await rt.close()
    assert message in str(info.value)
    assert info.value.node == "slow_1" and str(info.value.path).endswith("test_decorator_options.py")
