"""What an LLM call used comes back on its result: the backend's token counts in ``LLMResult.usage``, and
``ProgramRun.llm_result(node_id)`` with the successful attempt's time, for every backend (no trace needed)."""

from __future__ import annotations

import pytest

from tests.executor.conftest import REGISTRY, ScriptedLLM, compile_yaml
from tether.dag import LLMCall, Program, compile_program
from tether.runtime.executor import Executor, ExecutorError, LLMDelta, LLMRequest, LLMResult, Usage
from tether.tools import LocalToolRunner

TWO_NODES = """\
    nodes:
      - {id: greet, tool: nap, args: {label: hi, seconds: 0}}
      - id: count
        llm: {prompt: "count ${greet.output}", output: {type: integer}, retry: {attempts: 2, on: [error]}}
    """


def second_try(request: LLMRequest) -> str:
    return "not a number" if request.attempt == 1 else "42"


def test_usage_adds_field_by_field() -> None:
    total = sum([Usage(10, 2, 8, 0.5), Usage(20, 3, 16, 0.25)], Usage())
    assert total == Usage(prompt_tokens=30, completion_tokens=5, cached_tokens=24, seconds=0.75)
    result = LLMResult("x", Usage(10, 2, 8))
    assert (result.prompt_tokens, result.completion_tokens, result.cached_tokens) == (10, 2, 8)
    assert result.timed(1.5) == LLMResult("x", Usage(10, 2, 8, 1.5))


async def test_the_successful_attempt_s_usage_is_kept_with_its_time() -> None:
    llm = ScriptedLLM({"count": second_try}, delay=0.05)
    run = Executor(LocalToolRunner(REGISTRY), llm).start(compile_yaml(TWO_NODES), program_id="p")
    result = await run.wait()
    assert result.node_outputs == {"greet": "hi", "count": 42}
    kept = run.llm_result("count")
    assert (kept.text, kept.finish_reason) == ("42", "stop")
    assert (kept.usage.prompt_tokens, kept.usage.completion_tokens, kept.usage.cached_tokens) == (7, 1, 0)
    assert 0.05 <= kept.usage.seconds < 5  # the second attempt alone: each waits 0.05 s
    assert [r.attempt for r in llm.requests] == [1, 2]


async def test_only_finished_llm_calls_have_a_result() -> None:
    run = Executor(LocalToolRunner(REGISTRY), ScriptedLLM({"count": "3"})).start(
        compile_yaml(TWO_NODES), program_id="q"
    )
    with pytest.raises(ExecutorError, match="program 'q': node 'count' is not a finished LLM call"):
        run.llm_result("count")  # not run yet
    await run.wait()
    with pytest.raises(ExecutorError, match="node 'greet' is not a finished LLM call"):
        run.llm_result("greet")
    with pytest.raises(ExecutorError, match="node 'nobody' is not a finished LLM call"):
        run.llm_result("nobody")


async def test_a_growing_run_has_the_result_when_the_node_s_future_resolves() -> None:
    deltas: list[LLMDelta] = []
    executor = Executor(LocalToolRunner(REGISTRY), ScriptedLLM({"think": "one two three"}))
    run = executor.start(compile_program(Program("grow", may_grow=True), REGISTRY), program_id="g", hold=True)
    run.add_node(LLMCall(id="think", prompt="go"), on_delta=deltas.append)
    assert await run.node_future("think") == "one two three"
    usage = run.llm_result("think").usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 3) and usage.seconds > 0
    streamed = deltas[-1].result
    assert streamed is not None and streamed.usage == Usage(7, 3)  # the backend's: no time
    run.seal()
    await run.wait()
