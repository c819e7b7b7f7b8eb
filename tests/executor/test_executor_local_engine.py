"""The executor on the real ``tiny`` engine, end to end: a workflow whose LLM call has no output schema,
the ``ProgramHints`` it sends, and the program's KV pin released when the program fails."""

from __future__ import annotations

import pytest

from tests.executor.conftest import REGISTRY, compile_yaml
from tether.runtime import SamplingParams
from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.executor import Executor, NodeFailedError, ProgramRun
from tether.runtime.executor.backends.local_engine import LocalEngineBackend
from tether.runtime.tracing import MemoryTraceSink
from tether.tools import LocalToolRunner

CONFIG = EngineConfig(model="tiny", num_kv_blocks=64, policy="continuum-fixed")  # pins 2 s per tool call
SYSTEM = "You are a helpful assistant that keeps answers short and plain."


@pytest.fixture
async def engine():
    eng = await AsyncEngine.create(CONFIG)
    yield eng
    await eng.close()


async def test_a_workflow_runs_on_the_tiny_engine(engine: AsyncEngine) -> None:
    compiled = compile_yaml(
        f"""\
        inputs: {{topic: {{type: string, default: caches}}}}
        nodes:
          - {{id: find, tool: nap, args: {{label: "notes on ${{inputs.topic}}", seconds: 0}}}}
          - id: write
            llm:
              messages:
                - {{role: system, content: "{SYSTEM}"}}
                - {{role: user, content: "Summarize: ${{find.output}}"}}
              max_tokens: 12
          - {{id: size, tool: nap, args: {{label: "${{write.output}}", seconds: 0}}}}
        outputs: {{text: "${{write.output}}", echoed: "${{size.output}}"}}
        """
    )
    trace = MemoryTraceSink()
    result = await Executor(LocalToolRunner(REGISTRY), LocalEngineBackend(engine), trace=trace).run(
        compiled, program_id="tiny-run"
    )
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Summarize: notes on caches"},
    ]
    prompt = engine.engine.tokenizer.apply_chat_template(messages)
    direct = await engine.generate(GenerateRequest(prompt, SamplingParams(temperature=0.0, max_tokens=12)))
    assert isinstance(result.outputs["text"], str)
    assert result.outputs["text"] == direct.outputs[0].text == result.outputs["echoed"]
    (turn,) = trace.of_kind("llm_turn")
    assert turn.node_id == "write" and turn.attrs["backend"] == "local"
    assert turn.attrs["gen_ai.usage.input_tokens"] == len(engine.engine.tokenizer.encode(prompt))
    assert turn.attrs["gen_ai.usage.output_tokens"] == len(direct.outputs[0].token_ids)
    assert (turn.attrs["turn"], turn.attrs["last_turn"], turn.attrs["next_tool"]) == (0, True, "nap")
    await engine.check_integrity()


async def test_a_failed_program_releases_its_kv_pin(engine: AsyncEngine) -> None:
    compiled = compile_yaml(
        f"""\
        nodes:
          - id: first
            llm:
              messages: [{{role: system, content: "{SYSTEM}"}}, {{role: user, content: "Plan."}}]
              max_tokens: 4
          - {{id: tool, tool: explode, args: {{message: "${{first.output}}"}}}}
          - id: second
            llm:
              messages: [{{role: system, content: "{SYSTEM}"}}, {{role: user, content: "${{tool.output}}"}}]
              max_tokens: 4
        """
    )
    assert compiled.hints["first"].remaining_turns == 1 and compiled.hints["first"].next_tool == "explode"
    pinned_during_tool: list[bool] = []

    async def look(run: ProgramRun, node_id: str, value: object) -> None:
        if node_id == "first":
            pinned_during_tool.append(await engine.call(lambda e: e.kv_manager.has_pin("pinned")))

    with pytest.raises(NodeFailedError, match="node 'tool' failed"):
        await Executor(LocalToolRunner(REGISTRY), LocalEngineBackend(engine)).run(
            compiled, program_id="pinned", on_node_done=look
        )
    assert pinned_during_tool == [True]  # the engine kept the program's KV while its tool ran
    assert await engine.call(lambda e: e.kv_manager.has_pin("pinned")) is False
    assert await engine.call(lambda e: e.programs.programs.get("pinned")) is None
    await engine.check_integrity()


def test_engine_end_program_releases_the_pin() -> None:
    engine = build_engine(CONFIG)
    hints = ProgramHints(program_id="p", turn=0, next_tool="search", remaining_turns=2)
    engine.add_request("x" * 40, SamplingParams(temperature=0.0, max_tokens=2), hints=hints)
    while engine.has_unfinished():
        engine.step()
    assert engine.kv_manager.has_pin("p") and engine.kv_manager.num_pinned_blocks > 0
    engine.end_program("p")
    assert not engine.kv_manager.has_pin("p") and engine.kv_manager.num_pinned_blocks == 0
    assert engine.programs.programs.get("p") is None
    engine.end_program("never-seen")  # a no-op
    engine.check_integrity()
