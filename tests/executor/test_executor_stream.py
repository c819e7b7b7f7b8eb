"""The executor's agent features on the real ``tiny`` engine: a streamed LLM call whose deltas make up the
reply, chat messages with tool calls and tool results reaching the chat template (one growing prefix), tool
calls parsed from a forced ``tool_choice``, and a ``grammar`` constraint."""

from __future__ import annotations

import pytest

from tests.executor.conftest import REGISTRY
from tether.dag import LLMCall, Message, MessageToolCall, Program, ToolCall, compile_program, node_ref
from tether.runtime import SamplingParams
from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
from tether.runtime.engine.chat import format_tool_call, format_tool_response
from tether.runtime.engine.config import EngineConfig
from tether.runtime.executor import Executor, LLMDelta, ProgramRun
from tether.runtime.executor.backends.local_engine import LocalEngineBackend
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner

SYSTEM = "You are a helpful assistant that keeps answers short and plain."


@pytest.fixture(scope="module")
def config() -> EngineConfig:
    return EngineConfig(model="tiny", num_kv_blocks=64)


@pytest.fixture
async def engine(config: EngineConfig):
    eng = await AsyncEngine.create(config)
    yield eng
    await eng.check_integrity()
    await eng.close()


def start(engine: AsyncEngine, trace: MemoryTraceSink | None = None) -> ProgramRun:
    executor = Executor(LocalToolRunner(REGISTRY), LocalEngineBackend(engine), trace=trace)
    return executor.start(compile_program(Program("agent", may_grow=True), REGISTRY), hold=True)


async def test_streamed_deltas_make_up_the_reply(engine: AsyncEngine) -> None:
    run = start(engine)
    deltas: list[LLMDelta] = []
    messages = (Message(role="system", content=SYSTEM), Message(role="user", content="Plan three steps."))
    run.add_node(LLMCall(id="plan", messages=messages, max_tokens=24), on_delta=deltas.append)
    text = await run.node_future("plan")
    run.seal()
    await run.wait()
    prompt = engine.engine.tokenizer.apply_chat_template([m.to_openai(m.content) for m in messages])
    direct = await engine.generate(GenerateRequest(prompt, SamplingParams(temperature=0.0, max_tokens=24)))
    assert text == direct.outputs[0].text
    assert len(deltas) > 1 and "".join(d.text for d in deltas) == text
    assert all(d.result is None for d in deltas[:-1]) and deltas[-1].result is not None
    assert deltas[-1].result.completion_tokens == len(direct.outputs[0].token_ids)


async def test_tool_calls_and_results_reach_the_chat_template_as_one_growing_prefix(
    engine: AsyncEngine,
) -> None:
    """Turn 1 repeats turn 0's conversation plus the assistant's call and the tool's result (a reference to
    the tool node): its prompt extends turn 0's, and the engine reuses the cached prefix."""
    trace = MemoryTraceSink()
    run = start(engine, trace)
    first = (Message(role="system", content=SYSTEM), Message(role="user", content="Find notes."))
    run.add_node(LLMCall(id="t0", messages=first, max_tokens=4))
    run.add_node(ToolCall(id="act", tool="nap", args={"label": "notes on kv", "seconds": 0}, depends=("t0",)))
    call = MessageToolCall(
        id="call_7", function={"name": "nap", "arguments": '{"label": "kv", "seconds": 0}'}
    )
    turn1 = (
        *first,
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", tool_call_id="call_7", content=node_ref("act")),
    )
    run.add_node(LLMCall(id="t1", messages=turn1, max_tokens=4))
    await run.node_future("t1")
    run.seal()
    await run.wait()
    rendered = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Find notes."},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "content": "notes on kv", "tool_call_id": "call_7"},
    ]
    tokenizer = engine.engine.tokenizer
    prompt1 = tokenizer.apply_chat_template(rendered)
    prompt0 = tokenizer.apply_chat_template(rendered[:2])
    assert format_tool_call("nap", {"label": "kv", "seconds": 0}) in prompt1
    assert format_tool_response("notes on kv") in prompt1
    assert prompt1.startswith(prompt0.removesuffix("<|im_start|>assistant\n"))  # the prefix grows
    turns = {e.node_id: e.attrs for e in trace.of_kind("llm_turn")}
    assert turns["t1"]["gen_ai.usage.input_tokens"] == len(tokenizer.encode(prompt1))
    assert turns["t1"]["gen_ai.usage.cache_read.input_tokens"] > 0


async def test_a_forced_tool_choice_gives_parsed_tool_calls(engine: AsyncEngine) -> None:
    run = start(engine)
    messages = (Message(role="user", content="Do nothing."),)
    run.add_node(LLMCall(id="t", messages=messages, tools=("noop",), tool_choice="required", max_tokens=64))
    value = await run.node_future("t")
    assert value == [{"tool": "noop", "args": {}}]
    run.seal()
    await run.wait()


async def test_a_grammar_constrains_the_reply(engine: AsyncEngine) -> None:
    run = start(engine)
    run.add_node(LLMCall(id="yn", prompt="Yes or no?", grammar='root ::= "yes" | "no"', max_tokens=8))
    assert await run.node_future("yn") in ("yes", "no")
    run.seal()
    await run.wait()
