"""``ToolCall(on_error="value")``: a failing tool call becomes a ``ToolFailure`` value; the program goes on."""

from __future__ import annotations

import pytest

from tether.dag import Program, ToolCall, ToolFailure, compile_program, node_ref
from tether.runtime.executor import Executor, NodeFailedError
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner, ToolRegistry, tool


class Boom(Exception):
    pass


@tool
def explode(x: int) -> int:
    """Always fails."""
    raise Boom(f"no {x}")


@tool
def describe(v: object) -> str:
    """The value's text."""
    return f"got {v}"


def registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.register(explode)
    reg.register(describe)
    return reg


async def test_failure_becomes_the_value_and_dependents_run():
    reg = registry()
    trace = MemoryTraceSink()
    program = Program(
        "p",
        nodes=[
            ToolCall(id="a", tool="explode", args={"x": 3}, on_error="value"),
            ToolCall(id="b", tool="describe", args={"v": node_ref("a")}),
        ],
        outputs={"b": node_ref("b")},
    )
    result = await Executor(LocalToolRunner(reg), trace=trace).run(compile_program(program, reg))
    failure = result.node_outputs["a"]
    assert failure == ToolFailure(tool="explode", error_type="ToolExecutionError", message=failure.message)
    assert "no 3" in failure.message and str(failure).startswith("error from explode: ")
    assert result.outputs["b"].startswith("got ")
    assert [e.node_id for e in trace.of_kind("node_error")] == ["a"]


async def test_default_still_fails_the_program():
    reg = registry()
    program = Program("p", nodes=[ToolCall(id="a", tool="explode", args={"x": 1})])
    with pytest.raises(NodeFailedError, match="'a'"):
        await Executor(LocalToolRunner(reg)).run(compile_program(program, reg))


async def test_held_run_future_gets_the_failure():
    reg = registry()
    run = Executor(LocalToolRunner(reg)).start(compile_program(Program("g", may_grow=True), reg), hold=True)
    run.add_node(ToolCall(id="a", tool="explode", args={"x": 2}, on_error="value"))
    assert isinstance(await run.node_future("a"), ToolFailure)
    run.add_node(ToolCall(id="b", tool="describe", args={"v": "ok"}))
    assert await run.node_future("b") == "got ok"
    run.seal()
    assert (await run.wait()).node_outputs["b"] == "got ok"
