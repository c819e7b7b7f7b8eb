"""Decorator agents: handles start at once and overlap, data edges from arguments and f-strings,
sub-references, typed values, compile (static and value-dependent), errors, and a conversation's growing
prefix on the tiny engine. LLM answers come from a scripted backend except in the engine test."""

from __future__ import annotations

import asyncio
import inspect
import json
import time

import pytest
from pydantic import BaseModel

from tests.executor.conftest import ScriptedLLM
from tether.agents.decorator import (
    AgentContextError,
    ForeignHandleError,
    HandleUsageError,
    NodeHandle,
    ValueDependentError,
    agent,
    conversation,
    llm,
)
from tether.agents.runtime import AgentRuntime
from tether.dag.errors import ToolArgumentsError
from tether.runtime.executor import Executor, NodeFailedError
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner, tool

SLOW_S = 0.3


class Hit(BaseModel):
    title: str
    score: float


@tool
async def slow_double(x: int) -> int:
    """Double x after a while."""
    await asyncio.sleep(SLOW_S)
    return 2 * x


@tool
async def add(a: int, b: int) -> int:
    return a + b


@tool
async def find(query: str) -> list[Hit]:
    return [Hit(title=f"{query}-top", score=0.9), Hit(title=f"{query}-next", score=0.5)]


@tool
async def shout(text: str) -> str:
    return text.upper()


@tool
async def total(values: list[int], extra: dict[str, int]) -> int:
    return sum(values) + sum(extra.values())


TOOLS = [slow_double, add, find, shout, total]


async def runtime(script: dict | None = None, sink: MemoryTraceSink | None = None) -> AgentRuntime:
    backend = ScriptedLLM(script or {})
    return await AgentRuntime.create(TOOLS, backend=backend, trace=sink or MemoryTraceSink())


@agent
async def doubled_sum(x: int, y: int) -> int:
    a = slow_double(x)
    b = slow_double(x=y)
    return await add(a, b)


async def test_handles_start_at_once_and_overlap() -> None:
    sink = MemoryTraceSink()
    rt = await runtime(sink=sink)
    start = time.perf_counter()
    run = await doubled_sum.execute(2, 5, runtime=rt)
    elapsed = time.perf_counter() - start
    assert run.value == 14
    assert SLOW_S <= elapsed < 1.6 * SLOW_S  # the two slow calls overlapped (serial: 0.6 s)
    starts = {e.node_id: e.ts for e in sink.events if e.kind == "node_start"}
    assert abs(starts["slow_double_1"] - starts["slow_double_2"]) < 0.1
    assert {e.program_id for e in sink.events} == {run.trace_id}
    assert sorted(run.edges) == [("slow_double_1", "add_3", "data"), ("slow_double_2", "add_3", "data")]
    assert doubled_sum.last_run is run


async def test_fstring_references_make_data_edges() -> None:
    script = {"llm_3": lambda req: "summary of " + req.messages[-1]["content"]}
    rt = await runtime(script)

    @agent
    async def summarize(q: str) -> str:
        a = find(q)
        b = shout(text=q)
        return await llm(f"Summarize {a} and {b}", system="Be brief.")

    run = await summarize.execute("kv", runtime=rt)
    assert ("find_1", "llm_3", "data") in run.edges and ("shout_2", "llm_3", "data") in run.edges
    request = rt.backend.requests[0]
    assert request.messages[0] == {"role": "system", "content": "Be brief."}
    assert request.messages[1]["content"].startswith('Summarize [{"title":"kv-top","score":0.9}')
    assert request.messages[1]["content"].endswith(" and KV")
    assert run.value == "summary of " + request.messages[1]["content"]


async def test_sub_references_and_typed_tool_values() -> None:
    rt = await runtime()

    @agent
    async def pick(q: str):
        hits = find(query=q)
        top = shout(hits[0].title)  # lazy: a reference into the hits, not their value
        first = await hits[0]
        return first, await top, await hits

    run = await pick.execute("cache", runtime=rt)
    first, loud, hits = run.value
    assert isinstance(first, Hit) and first.title == "cache-top"
    assert loud == "CACHE-TOP"
    assert all(isinstance(h, Hit) for h in hits)
    assert run.program.nodes["shout_2"].args == {"text": "${find_1.output[0].title}"}
    assert run.edges == [("find_1", "shout_2", "data")]


class City(BaseModel):
    name: str
    population: int


async def test_llm_output_is_parsed_into_the_model() -> None:
    rt = await runtime({"llm_1": '{"name": "Paris", "population": 2102650}', "shout_2": ""})

    @agent
    async def city():
        answer = llm("Which city?", output=City)
        loud = shout(answer.name)
        return await answer, await loud

    value, loud = await city.run(runtime=rt)
    assert value == City(name="Paris", population=2102650)
    assert loud == "PARIS"
    assert rt.backend.requests[0].output_schema["properties"]["population"]["type"] == "integer"


async def test_handle_passed_inside_lists_and_dicts_binds_typed_values() -> None:
    rt = await runtime({"llm_2": lambda req: req.messages[0]["content"]})

    @agent
    async def nested():
        hits = find("x")
        return await llm([{"role": "user", "content": hits}])  # one reference: its JSON text

    assert json.loads(await nested.run(runtime=rt))[0]["title"] == "x-top"

    @agent
    async def summed():
        return await total([slow_double(1), 3], extra={"k": add(1, 2)})

    run = await summed.execute(runtime=rt)
    assert run.value == 2 + 3 + 3
    assert run.program.nodes["total_3"].args == {
        "values": ["${slow_double_1.output}", 3],
        "extra": {"k": "${add_2.output}"},
    }


# -- compile --------------------------------------------------------------------------------------------------
async def test_compile_static_agent_runs_on_the_executor_with_the_same_value() -> None:
    compiled = doubled_sum.compile(x=2, y=5)
    program = compiled.program
    assert len(program) == 3
    assert set(program.graph.edges) == {("slow_double_1", "add_3"), ("slow_double_2", "add_3")}
    assert program.nodes["slow_double_1"].args == {"x": "${inputs.x}"}
    assert program.outputs == {"result": "${add_3.output}"}
    assert program.inputs["x"].type == "integer" and program.inputs["y"].default == 5
    executor = Executor(LocalToolRunner(compiled.registry))
    result = await executor.run(compiled, {"x": 2, "y": 5})
    rt = await runtime()
    assert result.outputs["result"] == await doubled_sum.run(2, 5, runtime=rt) == 14
    other = await executor.run(compiled, {"x": 1, "y": 1})
    assert other.outputs["result"] == 4


@agent
async def branchy(x: int) -> int:
    d = await slow_double(x)
    if d > 10:  # the value is not known while compiling
        return await add(d, 1)
    return d


def test_compile_value_dependent_agent_names_the_line() -> None:
    lines, first = inspect.getsourcelines(branchy.fn)
    line = first + next(i for i, text in enumerate(lines) if "if d > 10" in text)
    with pytest.raises(ValueDependentError) as info:
        branchy.compile(x=3)
    assert info.value.line == line
    assert info.value.path is not None and info.value.path.name == "test_decorator.py"
    assert info.value.node == "slow_double_1"
    assert f"test_decorator.py:{line}:" in str(info.value) and ">" in str(info.value)


async def test_value_dependent_agent_runs() -> None:
    rt = await runtime()
    assert await branchy.run(3, runtime=rt) == 6
    assert await branchy.run(6, runtime=rt) == 13


def test_compile_rejects_iteration_and_len_of_inputs() -> None:
    @agent
    async def loop(items: list):
        return [shout(i) for i in items]

    with pytest.raises(ValueDependentError, match=r"iteration .* on \$\{inputs.items\}"):
        loop.compile(items=["a"])

    @agent
    async def count(items: list):
        return await add(len(items), 1)

    with pytest.raises(ValueDependentError, match=r"len\(\) on \$\{inputs.items\}"):
        count.compile()


# -- errors ---------------------------------------------------------------------------------------------------
async def test_unknown_tool_argument_names_node_tool_and_argument() -> None:
    rt = await runtime()

    @agent
    async def bad():
        return await add(a=1, c=2)

    with pytest.raises(ToolArgumentsError) as info:
        await bad.run(runtime=rt)
    assert info.value.node == "add_1" and "'c'" in str(info.value) and "add" in str(info.value)
    assert info.value.line is not None


def test_llm_outside_an_agent() -> None:
    with pytest.raises(AgentContextError, match="outside an agent"):
        llm("hi")
    with pytest.raises(AgentContextError):
        conversation()
    assert asyncio.run(add.fn(a=1, b=2)) == 3 and inspect.iscoroutine(c := add(a=1, b=2))  # plain call
    c.close()


async def test_awaiting_a_handle_of_another_run() -> None:
    rt = await runtime()
    leaked: list[NodeHandle] = []

    @agent
    async def first():
        h = find("a")
        leaked.append(h)
        return await h

    @agent
    async def second():
        return await leaked[0]

    await first.run(runtime=rt)
    with pytest.raises(ForeignHandleError, match="find_1"):
        await second.run(runtime=rt)


async def test_using_a_handle_as_a_value_and_failures_cancel_the_run() -> None:
    rt = await runtime()

    @agent
    async def careless():
        h = slow_double(1)
        return h + 1

    with pytest.raises(HandleUsageError, match="await it"):
        await careless.run(runtime=rt)
    await asyncio.sleep(0)
    assert not rt.executor.runs  # the run was cancelled, not left held

    @agent
    async def failing():
        return await add(a=1, b=slow_double(x=1)) + await shout(text=find("q")[5].title)

    with pytest.raises(NodeFailedError):
        await failing.run(runtime=rt)


# -- conversation on the engine -------------------------------------------------------------------------------
async def test_conversation_grows_one_prefix_on_the_tiny_engine() -> None:
    sink = MemoryTraceSink()
    rt = await AgentRuntime.create(TOOLS, model="tiny", num_kv_blocks=64, trace=sink)
    try:

        @agent
        async def chat():
            conv = conversation(system="You answer questions about caches. " * 8, max_tokens=8)
            first = conv.say("What is a KV cache?")
            second = conv.say(f"And what did you say before? {find('kv')[0].title}")
            return conv.messages, await first, await second

        run = await chat.execute(runtime=rt)
        messages, first, second = run.value
        assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant"]
        assert messages[2].content == "${llm_1.output}"
        assert ("llm_1", "llm_3", "data") in run.edges and ("find_2", "llm_3", "data") in run.edges
        turns = {e.node_id: e.attrs for e in sink.events if e.kind == "llm_turn"}
        assert turns["llm_3"]["gen_ai.usage.cache_read.input_tokens"] > 0
        assert turns["llm_3"]["gen_ai.usage.input_tokens"] > turns["llm_1"]["gen_ai.usage.input_tokens"]
        await rt.backend.engine.check_integrity()
    finally:
        await rt.close()


async def test_inline_agent_call_joins_the_callers_program() -> None:
    rt = await runtime()

    @agent
    async def outer(x: int) -> int:
        inner_value = await doubled_sum(x, 1)  # inline: same run, same node numbering
        return await add(inner_value, 100)

    run = await outer.execute(3, runtime=rt)
    assert run.value == 6 + 2 + 100
    assert set(run.program.nodes) == {"slow_double_1", "slow_double_2", "add_3", "add_4"}
    with pytest.raises(AgentContextError, match="doubled_sum.run"):
        doubled_sum(1, 2)
