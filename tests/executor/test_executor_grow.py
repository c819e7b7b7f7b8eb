"""Runs that grow: hold/seal, node futures, references made with ``node_ref``, hints of late nodes, chat
messages with tool calls, and LLM-call retries (scripted backends; the tiny engine is in test_executor_stream)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.executor.conftest import REGISTRY, ScriptedLLM
from tether.dag import (
    LLMCall,
    Message,
    MessageToolCall,
    Program,
    RetryPolicy,
    ToolCall,
    compile_program,
    node_ref,
)
from tether.dag.refs import RefSyntaxError
from tether.runtime.executor import (
    Executor,
    ExecutorError,
    LLMBackendError,
    LLMOutputError,
    LLMRequest,
    LLMResult,
    NodeFailedError,
    ProgramCancelledError,
)
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner


def held(llm: ScriptedLLM | None = None, trace: MemoryTraceSink | None = None):
    compiled = compile_program(Program("agent", may_grow=True), REGISTRY)
    return Executor(LocalToolRunner(REGISTRY), llm, trace=trace).start(compiled, hold=True)


def nap(node_id: str, label: str, seconds: float = 0.0, **kw) -> ToolCall:
    return ToolCall(id=node_id, tool="nap", args={"label": label, "seconds": seconds}, **kw)


async def test_an_empty_held_run_grows_and_ends_on_seal() -> None:
    run = held()
    await asyncio.sleep(0.01)
    assert not run.done and run.held
    run.add_node(nap("a", "first"))
    assert await run.node_future("a") == "first"
    await asyncio.sleep(0.01)
    assert not run.done  # its only node completed, but the run is held
    run.add_node(nap("b", f"after {node_ref('a')}"))
    assert await run.node_future("b") == "after first"
    run.seal()
    result = await run.wait()
    assert result.node_outputs == {"a": "first", "b": "after first"}
    with pytest.raises(ExecutorError, match="sealed|ended"):
        run.add_node(nap("c", "late"))


async def test_seal_while_nodes_run_ends_when_they_are_done() -> None:
    run = held()
    run.add_node(nap("slow", "done", 0.05))
    run.seal()
    with pytest.raises(ExecutorError, match="sealed"):
        run.add_node(nap("more", "x"))
    assert not run.done
    result = await run.wait()
    assert result.node_outputs == {"slow": "done"}


async def test_hold_needs_a_growing_program() -> None:
    compiled = compile_program(Program("fixed", nodes=[nap("a", "x")]), REGISTRY)
    with pytest.raises(ExecutorError, match="may_grow"):
        Executor(LocalToolRunner(REGISTRY)).start(compiled, hold=True)


async def test_a_failure_ends_a_held_run_and_its_futures() -> None:
    run = held()
    pending = run.node_future("never")  # asked for before it exists
    run.add_node(ToolCall(id="boom", tool="explode", args={"message": "bad"}))
    with pytest.raises(NodeFailedError) as failed:
        await run.node_future("boom")
    assert failed.value.node == "boom"
    with pytest.raises(NodeFailedError):
        await run.wait()
    with pytest.raises(NodeFailedError, match="boom"):
        await pending  # the run's error: the node that failed is named


async def test_futures_of_a_cancelled_run_and_of_nodes_never_added() -> None:
    run = held()
    run.add_node(nap("slow", "x", 5.0))
    fut = run.node_future("slow")
    run.cancel("the user left")
    with pytest.raises(ProgramCancelledError, match="the user left"):
        await fut
    with pytest.raises(ProgramCancelledError):
        await run.wait()

    run = held()
    run.add_node(nap("a", "x"))
    missing = run.node_future("b")
    await run.node_future("a")
    run.seal()
    await run.wait()
    with pytest.raises(ExecutorError, match="'b'"):
        await missing
    assert run.node_future("a").result() == "x"  # a done node's future, after the end


async def test_node_ref_makes_data_edges_and_binds_typed_values() -> None:
    assert node_ref("search") == "${search.output}"
    assert node_ref("search", (0, "url")) == "${search.output[0].url}"
    for bad in (("inputs", ()), ("1x", ()), ("a", ("b c",)), ("a", (True,))):
        with pytest.raises(RefSyntaxError):
            node_ref(*bad)
    llm = ScriptedLLM({"write": lambda r: r.messages[-1]["content"].upper()})
    run = held(llm)
    run.add_node(ToolCall(id="doc", tool="make_doc", args={"title": "kv", "words": 3}))
    run.add_node(
        ToolCall(id="desc", tool="describe", args={"doc": node_ref("doc"), "pages": [1], "note": "n"})
    )
    run.add_node(LLMCall(id="write", messages=(Message(role="user", content=f"about {node_ref('desc')}"),)))
    graph = run.program.graph
    assert graph.edges["doc", "desc"]["kind"] == "data" and graph.edges["desc", "write"]["kind"] == "data"
    run.seal()
    result = await run.wait()
    assert result.node_outputs["write"] == f"ABOUT {result.node_outputs['desc']}".upper()
    assert type(result.node_outputs["doc"]).__name__ == "Doc"  # the typed value, not its text


async def test_a_late_tool_is_the_next_tool_of_a_late_call_not_yet_dispatched() -> None:
    """``think`` waits on ``slow``, so the tool added after it is known when it is dispatched; ``early`` was
    dispatched before its tool was added, so its request cannot name it."""
    llm = ScriptedLLM({"early": "e", "think": "t"}, delay=0.02)
    trace = MemoryTraceSink()
    run = held(llm, trace)
    run.add_node(LLMCall(id="early", prompt="go"))
    await asyncio.sleep(0)  # dispatched
    run.add_node(nap("after_early", node_ref("early")))
    run.add_node(nap("slow", "s", 0.05))
    run.add_node(LLMCall(id="think", prompt=f"next {node_ref('slow')}"))
    run.add_node(ToolCall(id="act", tool="snooze", args={"label": node_ref("think"), "seconds": 0}))
    run.seal()
    await run.wait()
    requests = {r.node_id: r for r in llm.requests}
    assert requests["think"].hints.next_tool == "snooze"
    assert requests["think"].hints.turn == 0 and requests["think"].hints.remaining_turns is None
    assert requests["early"].hints.next_tool is None
    assert run.compiled.hints["early"].next_tool == "nap"  # known now, too late for its request
    from tether.runtime.executor.backends.local_engine import program_hints

    ph = program_hints(requests["think"])
    assert (ph.program_id, ph.turn, ph.next_tool, ph.remaining_turns, ph.last_turn) == (
        run.id,
        0,
        "snooze",
        None,
        False,
    )
    turns = {e.node_id: e.attrs for e in trace.of_kind("llm_turn")}
    assert turns["think"]["next_tool"] == "snooze" and turns["think"]["status"] == "ok"


async def test_messages_with_tool_calls_and_results_reach_the_backend() -> None:
    call = MessageToolCall(id="call_1", function={"name": "nap", "arguments": '{"label": "x", "seconds": 0}'})
    llm = ScriptedLLM({"turn1": "done"})
    run = held(llm)
    run.add_node(nap("act", "found it"))
    run.add_node(
        LLMCall(
            id="turn1",
            tools=("nap",),
            messages=(
                Message(role="user", content="find it"),
                Message(role="assistant", tool_calls=(call,)),
                Message(role="tool", tool_call_id="call_1", content=node_ref("act")),
            ),
        )
    )
    run.seal()
    await run.wait()
    (request,) = llm.requests
    assert request.messages == (
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "nap", "arguments": '{"label": "x", "seconds": 0}'},
                }
            ],
        },
        {"role": "tool", "content": "found it", "tool_call_id": "call_1"},
    )
    assert request.tools[0]["function"]["name"] == "nap"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"role": "user", "content": "x", "tool_calls": ()}, "only an assistant"),
        ({"role": "assistant", "tool_calls": ()}, "empty"),
        ({"role": "tool", "content": "r"}, "tool_call_id"),
        ({"role": "user", "content": "x", "tool_call_id": "c"}, "only a tool message"),
    ],
)
def test_message_tool_fields_are_validated(fields: dict, error: str) -> None:
    if fields.get("tool_calls") == () and fields["role"] == "user":
        fields = {**fields, "tool_calls": ({"id": "c", "function": {"name": "f"}},)}
    with pytest.raises(ValueError, match=error):
        Message(**fields)
    with pytest.raises(ValueError, match="JSON object"):
        MessageToolCall(id="c", function={"name": "f", "arguments": "[1]"})


class FlakyLLM:
    """Fails (``failures`` in order: an exception to raise or a bad text to return) before answering."""

    name = "flaky"

    def __init__(self, failures: list[BaseException | str], answer: str, hang: float = 0.0) -> None:
        self.failures = failures
        self.answer = answer
        self.hang = hang
        self.attempts: list[int] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.attempts.append(request.attempt)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, BaseException):
                raise failure
            if failure == "hang":
                await asyncio.sleep(self.hang)
            return LLMResult(text=failure)
        return LLMResult(text=self.answer)

    async def end_program(self, program_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


def one_llm_program(**kw) -> object:
    node = LLMCall(
        id="ask", prompt="count", output={"type": "object", "properties": {"n": {"type": "integer"}}}, **kw
    )
    return compile_program(Program("p", nodes=[node]), REGISTRY)


async def test_llm_calls_are_retried_with_numbered_attempts() -> None:
    llm = FlakyLLM([LLMBackendError("ask", "HTTP 503"), "not json"], '{"n": 3}')
    trace = MemoryTraceSink()
    compiled = one_llm_program(retry=RetryPolicy(attempts=3))
    result = await Executor(LocalToolRunner(REGISTRY), llm, trace=trace).run(compiled)
    assert result.node_outputs["ask"].n == 3
    assert llm.attempts == [1, 2, 3]
    turns = trace.of_kind("llm_turn")
    assert [(t.attrs["attempt"], t.attrs["status"]) for t in turns] == [(1, "error"), (2, "error"), (3, "ok")]
    assert "HTTP 503" in turns[0].attrs["error"] and "LLMOutputError" in turns[1].attrs["error"]
    assert [t.attrs["request_id"].rsplit("#")[1] for t in turns] == ["1", "2", "3"]


async def test_llm_retries_run_out_or_skip_unlisted_failures() -> None:
    llm = FlakyLLM(["bad", "worse"], '{"n": 1}')
    with pytest.raises(NodeFailedError) as failed:
        await Executor(LocalToolRunner(REGISTRY), llm).run(one_llm_program(retry=RetryPolicy(attempts=2)))
    assert failed.value.attempts == 2 and isinstance(failed.value.cause, LLMOutputError)

    llm = FlakyLLM(["hang"], '{"n": 1}', hang=1.0)
    only_errors = RetryPolicy(attempts=3, on=("error",))
    with pytest.raises(NodeFailedError) as failed:
        await Executor(LocalToolRunner(REGISTRY), llm).run(one_llm_program(retry=only_errors, timeout=0.05))
    assert failed.value.attempts == 1 and llm.attempts == [1]

    llm = FlakyLLM(["hang"], '{"n": 4}', hang=1.0)
    result = await Executor(LocalToolRunner(REGISTRY), llm).run(
        one_llm_program(retry=RetryPolicy(attempts=2, on=("timeout",)), timeout=0.05)
    )
    assert result.node_outputs["ask"].n == 4 and llm.attempts == [1, 2]


async def test_streaming_hook_without_a_streaming_backend_gets_one_delta() -> None:
    llm = ScriptedLLM({"plan": "1. search\n2. answer"})
    run = held(llm)
    deltas = []
    run.add_node(LLMCall(id="plan", prompt="plan"), on_delta=deltas.append)
    assert await run.node_future("plan") == "1. search\n2. answer"
    assert [d.text for d in deltas] == ["1. search\n2. answer"] and deltas[0].result is not None
    with pytest.raises(ExecutorError, match="LLM calls only"):
        run.add_node(nap("t", "x"), on_delta=deltas.append)
    run.seal()
    await run.wait()


def test_llm_call_constraint_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="needs 'tools'"):
        LLMCall(id="a", prompt="p", tool_choice="required")
    with pytest.raises(ValueError, match="two constraints"):
        LLMCall(id="a", prompt="p", tools=("nap",), tool_choice="required", grammar='root ::= "x"')
    assert json.loads(LLMCall(id="a", prompt="p", grammar='root ::= "x"').model_dump_json())["grammar"]


async def test_the_openai_backend_sends_messages_tool_choice_and_grammar_as_is() -> None:
    from tether.runtime.executor.backends.openai import OpenAIBackend
    from tether.runtime.executor.backends.openai_reply import parse_reply

    backend = OpenAIBackend("http://localhost:1/v1", "m")
    messages = (
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "r", "tool_call_id": "c1"},
    )
    spec = {"type": "function", "function": {"name": "nap"}}
    request = LLMRequest(
        "p", "n", messages=messages, tools=(spec,), tool_choice="required", grammar='root ::= "x"'
    )
    body = backend.request_body(request)
    assert body["messages"] == list(messages) and body["tool_choice"] == "required"
    assert body["structured_outputs"] == {"grammar": 'root ::= "x"'} and body["tools"] == [spec]
    reply = {
        "choices": [
            {"message": {"tool_calls": [{"id": "c9", "function": {"name": "nap", "arguments": "{}"}}]}}
        ]
    }
    (call,) = parse_reply(reply, chat=True).tool_calls
    assert call.to_openai() == {
        "id": "c9",
        "type": "function",
        "function": {"name": "nap", "arguments": "{}"},
    }
    await backend.close()
