"""The asyncio engine: results equal the offline API, streams, errors, cancellation, a free event loop."""

from __future__ import annotations

import asyncio

import pytest

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.errors import InvalidRequestError

PARAMS = SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True)
PROMPTS = ["first prompt", "second, longer prompt", "third"]


@pytest.fixture
async def engine():
    eng = await AsyncEngine.create(EngineConfig(model="tiny", num_kv_blocks=128))
    yield eng
    await eng.close()


async def idle_and_clean(engine: AsyncEngine) -> None:
    await engine.check_integrity()
    assert await engine.call(lambda e: (e.num_unfinished, e.kv_manager.num_used_blocks)) == (0, 0)


async def test_concurrent_generates_equal_the_offline_batch(engine):
    expected = [o.outputs[0].token_ids for o in LLM("tiny", num_kv_blocks=128).generate(PROMPTS, PARAMS)]
    outs = await asyncio.gather(*(engine.generate(GenerateRequest(p, PARAMS)) for p in PROMPTS))
    assert [o.outputs[0].token_ids for o in outs] == expected
    await idle_and_clean(engine)


async def test_stream_deltas_add_up_to_the_final_output(engine):
    deltas = [d async for d in engine.stream(GenerateRequest("stream me", PARAMS, request_id="s1"))]
    assert [len(d.token_ids) for d in deltas] == [1] * 10
    assert [d.finished for d in deltas] == [False] * 9 + [True]
    final = deltas[-1].output.outputs[0]
    assert tuple(t for d in deltas for t in d.token_ids) == final.token_ids
    assert "".join(d.text for d in deltas) == final.text
    assert deltas[-1].finish_reason == "length" and deltas[-1].request_id == "s1"
    await idle_and_clean(engine)


async def test_invalid_request_raises_to_its_caller_only(engine):
    good = asyncio.create_task(engine.generate(GenerateRequest("keeps going", PARAMS)))
    with pytest.raises(InvalidRequestError, match="prompt"):
        await engine.generate(GenerateRequest("", PARAMS, request_id="bad"))
    assert len((await good).outputs[0].token_ids) == 10
    await idle_and_clean(engine)


async def test_cancelled_stream_aborts_its_request_and_frees_blocks(engine):
    long = SamplingParams(temperature=0.0, max_tokens=200, ignore_eos=True)
    got = 0
    async for _ in engine.stream(GenerateRequest("cancel me", long)):
        got += 1
        if got == 3:
            break
    await asyncio.sleep(0)  # the generator's finally has submitted the abort
    await idle_and_clean(engine)


async def test_event_loop_runs_while_the_engine_steps(engine):
    task = asyncio.create_task(
        engine.generate(
            GenerateRequest("x" * 200, SamplingParams(temperature=0.0, max_tokens=60, ignore_eos=True))
        )
    )
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.001)
        ticks += 1
    assert ticks > 1  # the loop kept running while forward passes happened on the engine thread
    assert len(task.result().outputs[0].token_ids) == 60
    await idle_and_clean(engine)
