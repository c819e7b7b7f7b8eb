"""Timeouts and retries, failures that name the node and cause, cancel what depends on them and release
the program; cancellation; errors found before anything runs."""

from __future__ import annotations

import asyncio

import pytest

from tests.executor import executor_tools
from tests.executor.conftest import REGISTRY, ScriptedLLM, compile_yaml
from tether.dag.errors import InputError
from tether.runtime.executor import (
    Executor,
    LLMOutputError,
    NodeFailedError,
    ProgramCancelledError,
    ReferenceResolutionError,
)
from tether.runtime.executor.errors import NoLLMBackendError
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner, ToolTimeoutError
from tether.tools.errors import ToolArgumentError, ToolExecutionError

FLAKY = """\
    nodes:
      - id: call
        tool: flaky
        args: {{hang_first: {hang}}}
        timeout: 0.05
        retry: {{attempts: {attempts}, backoff_s: 0.01, on: [{on}]}}
    outputs: {{answer: "${{call.output}}"}}
    """


async def test_a_timeout_triggers_the_retry_policy() -> None:
    trace = MemoryTraceSink()
    compiled = compile_yaml(FLAKY.format(hang=2, attempts=3, on="timeout"))
    result = await Executor(LocalToolRunner(REGISTRY), trace=trace).run(compiled, program_id="r")
    assert result.outputs == {"answer": "answered on call 3"}
    calls = [(e.attrs["attempt"], e.attrs["status"], e.attrs["call_id"]) for e in trace.of_kind("tool_call")]
    assert calls == [(1, "timeout", "r/call#1"), (2, "timeout", "r/call#2"), (3, "ok", "r/call#3")]


async def test_retries_run_out() -> None:
    compiled = compile_yaml(FLAKY.format(hang=5, attempts=2, on="timeout"))
    with pytest.raises(NodeFailedError) as info:
        await Executor(LocalToolRunner(REGISTRY)).run(compiled, program_id="r")
    err = info.value
    assert (err.node, err.attempts, type(err.cause)) == ("call", 2, ToolTimeoutError)
    assert str(err) == (
        "program 'r': node 'call' failed after 2 attempts: "
        "ToolTimeoutError: tool 'flaky' timed out after 0.05 s (call r/call#2)"
    )
    assert executor_tools.CALLS["flaky"] == 2


async def test_only_the_listed_failures_are_retried() -> None:
    compiled = compile_yaml(FLAKY.format(hang=1, attempts=3, on="error"))  # timeouts are not retried
    with pytest.raises(NodeFailedError, match="node 'call' failed: ToolTimeoutError"):
        await Executor(LocalToolRunner(REGISTRY)).run(compiled)
    assert executor_tools.CALLS["flaky"] == 1
    compiled = compile_yaml(
        "nodes:\n  - {id: boom, tool: explode, args: {message: no}, retry: {attempts: 3, on: [error]}}\n"
    )
    with pytest.raises(NodeFailedError) as info:
        await Executor(LocalToolRunner(REGISTRY)).run(compiled, program_id="e")
    assert str(info.value) == (
        "program 'e': node 'boom' failed after 3 attempts: ToolExecutionError: tool 'explode' failed: RuntimeError: no"
    )
    assert isinstance(info.value.cause, ToolExecutionError) and executor_tools.CALLS["explode"] == 3


async def test_argument_errors_are_never_retried() -> None:
    compiled = compile_yaml(
        """\
        inputs: {n: {type: object, default: {seconds: fast}}}
        nodes:
          - {id: sleepy, tool: nap, args: {label: x, seconds: "${inputs.n.seconds}"}, retry: {attempts: 3}}
        """
    )
    with pytest.raises(NodeFailedError) as info:
        await Executor(LocalToolRunner(REGISTRY)).run(compiled)
    assert info.value.attempts == 1 and isinstance(info.value.cause, ToolArgumentError)
    assert "tool 'nap': argument 'seconds': Input should be a valid number (got 'fast')" in str(info.value)
    assert executor_tools.CALLS["nap"] == 0


async def test_a_failure_cancels_running_nodes_and_dependents_and_releases_the_program() -> None:
    compiled = compile_yaml(
        """\
        nodes:
          - {id: slow, tool: nap, args: {label: s, seconds: 5}}
          - {id: boom, tool: explode, args: {message: disk full}}
          - {id: after_boom, tool: nap, args: {label: "${boom.output}", seconds: 0}}
          - {id: after_slow, tool: nap, args: {label: "${slow.output}", seconds: 0}}
          - {id: talk, llm: {prompt: "hi"}, depends: [slow]}
        """
    )
    trace = MemoryTraceSink()
    llm = ScriptedLLM({"talk": "never asked"})
    with pytest.raises(NodeFailedError) as info:
        await Executor(LocalToolRunner(REGISTRY), llm, trace=trace).run(compiled, program_id="f")
    assert info.value.node == "boom" and info.value.program_id == "f"
    assert (
        str(info.value)
        == "program 'f': node 'boom' failed: ToolExecutionError: tool 'explode' failed: RuntimeError: disk full"
    )
    assert [e.node_id for e in trace.of_kind("node_error")] == ["boom"]
    assert trace.of_kind("node_error")[0].attrs["error_type"] == "ToolExecutionError"
    assert [e.node_id for e in trace.of_kind("node_cancelled")] == ["slow"]
    assert {e.node_id for e in trace.of_kind("node_start")} == {"slow", "boom"}
    assert trace.events[-1].kind == "program_end" and trace.events[-1].attrs["status"] == "failed"
    assert llm.requests == [] and llm.ended == ["f"]


async def test_a_program_can_be_cancelled() -> None:
    compiled = compile_yaml(
        """\
        nodes:
          - {id: long, tool: nap, args: {label: l, seconds: 10}}
          - {id: think, llm: {prompt: "${long.output}"}}
        """
    )
    trace = MemoryTraceSink()
    llm = ScriptedLLM({"think": "-"})
    executor = Executor(LocalToolRunner(REGISTRY), llm, trace=trace)
    run = executor.start(compiled, program_id="c")
    await asyncio.sleep(0.05)
    assert executor.cancel("c", "user asked") is True
    with pytest.raises(ProgramCancelledError, match="program 'c' was cancelled: user asked"):
        await run.wait()
    assert run.status == "cancelled" and run.done
    assert [e.node_id for e in trace.of_kind("node_cancelled")] == ["long"]
    assert llm.ended == ["c"] and executor.runs == {}
    assert run.cancel() is False


async def test_cancelling_the_waiter_cancels_the_program() -> None:
    compiled = compile_yaml("nodes:\n  - {id: long, tool: nap, args: {label: l, seconds: 10}}\n")
    executor = Executor(LocalToolRunner(REGISTRY))
    waiter = asyncio.create_task(executor.run(compiled, program_id="w"))
    await asyncio.sleep(0.05)
    run = executor.runs["w"]
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(ProgramCancelledError, match="the caller stopped waiting"):
        await run.wait()


async def test_llm_output_that_does_not_fit_its_schema() -> None:
    compiled = compile_yaml(
        """\
        nodes:
          - id: plan
            llm: {prompt: p, output: {type: object, properties: {n: {type: integer}}, required: [n]}}
        """
    )
    for text, reason in [
        ("sure! here it is", "not JSON (Expecting value at line 1 column 1)"),
        ('{"n": "many"}', "n: Input should be a valid integer"),
    ]:
        with pytest.raises(NodeFailedError) as info:
            await Executor(LocalToolRunner(REGISTRY), ScriptedLLM({"plan": text})).run(compiled)
        cause = info.value.cause
        assert isinstance(cause, LLMOutputError) and cause.node == "plan"
        assert str(cause).startswith(f"node 'plan': output does not fit its schema: {reason}")


async def test_a_reference_that_does_not_resolve_at_run_time() -> None:
    compiled = compile_yaml(
        """\
        inputs: {items: {type: array, default: []}}
        nodes:
          - {id: first, tool: nap, args: {label: "${inputs.items[0]}", seconds: 0}}
        """
    )
    with pytest.raises(NodeFailedError) as info:
        await Executor(LocalToolRunner(REGISTRY)).run(compiled)
    assert isinstance(info.value.cause, ReferenceResolutionError)
    assert str(info.value.cause) == (
        "node 'first': reference ${inputs.items[0]}: index [0] is out of range: the value has 0 items"
    )


async def test_errors_before_anything_runs() -> None:
    compiled = compile_yaml(
        "inputs: {n: integer}\nnodes:\n  - {id: a, tool: nap, args: {label: x, seconds: 0}}\n"
    )
    executor = Executor(LocalToolRunner(REGISTRY))
    with pytest.raises(InputError, match="input 'n': missing required input of type integer"):
        executor.start(compiled)
    with pytest.raises(InputError, match="input 'n': expected integer, got str '3'"):
        executor.start(compiled, {"n": "3"})
    with pytest.raises(InputError, match=r"input 'm': the program has no such input \(inputs: n\)"):
        executor.start(compiled, {"n": 1, "m": 2})
    with pytest.raises(NoLLMBackendError, match="has LLM calls"):
        executor.start(compile_yaml("nodes:\n  - {id: a, llm: {prompt: p}}\n"))
    assert executor_tools.CALLS == {} and executor.runs == {}
