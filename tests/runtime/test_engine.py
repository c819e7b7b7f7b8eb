"""The engine end to end on CPU with the tiny preset: prefix caching, preemption, chunked prefill, stops,
bad input. Every test checks the cache's integrity and that no block leaks."""

from __future__ import annotations

import random

import pytest

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.errors import InvalidRequestError, ModelLoadError

GREEDY = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)


def assert_clean(llm: LLM) -> None:
    llm.engine.check_integrity()
    assert llm.engine.kv_manager.num_used_blocks == 0
    assert not llm.engine.has_unfinished()


@pytest.fixture(scope="module")
def llm() -> LLM:
    return LLM("tiny", num_kv_blocks=256)


def tokens(outs) -> list[tuple[int, ...]]:
    return [o.outputs[0].token_ids for o in outs]


def test_generate_returns_one_output_per_prompt_in_order(llm):
    outs = llm.generate(["hello", "a longer prompt with more bytes", [5, 6, 7]], GREEDY)
    assert [len(o.prompt_token_ids) for o in outs] == [6, 32, 3]  # BOS + bytes for text prompts
    assert all(len(o.outputs[0].token_ids) == 12 for o in outs)
    assert all(o.outputs[0].finish_reason == "length" and o.finished for o in outs)
    assert_clean(llm)


def test_batched_equals_one_at_a_time(llm):
    prompts = ["alpha", "beta gamma delta", "x" * 70]
    batched = tokens(llm.generate(prompts, GREEDY))
    single = [tokens(llm.generate([p], GREEDY))[0] for p in prompts]
    assert batched == single
    assert_clean(llm)


def test_shared_prefix_is_served_from_cache_and_output_unchanged():
    rng = random.Random(0)
    prefix = [rng.randrange(256) for _ in range(100)]
    a = prefix + [rng.randrange(256) for _ in range(10)]
    b = prefix + [rng.randrange(256) for _ in range(7)]
    cached = LLM("tiny", num_kv_blocks=64)
    first = cached.generate([a], GREEDY)[0]
    second = cached.generate([b], GREEDY)[0]
    assert first.num_cached_tokens == 0
    assert second.num_cached_tokens >= 96  # 100 rounded down to the block size
    cold = LLM("tiny", num_kv_blocks=64, enable_prefix_caching=False).generate([b], GREEDY)[0]
    assert cold.num_cached_tokens == 0
    assert second.outputs[0].token_ids == cold.outputs[0].token_ids
    assert_clean(cached)


def test_tiny_cache_preempts_and_recomputes_with_identical_outputs():
    rng = random.Random(1)
    prompts = [[rng.randrange(256) for _ in range(rng.randrange(5, 40))] for _ in range(32)]
    params = SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True)
    roomy = LLM("tiny", num_kv_blocks=512)
    tight = LLM("tiny", num_kv_blocks=12)  # 192 tokens for 32 requests of up to 55
    expected = tokens(roomy.generate(prompts, params))
    got = tight.generate(prompts, params)
    assert tokens(got) == expected
    assert tight.engine.scheduler.num_preemptions > 0
    assert_clean(tight)
    assert_clean(roomy)


def test_chunked_prefill_matches_whole_prefill():
    prompt = [i % 250 for i in range(150)]
    whole = LLM("tiny", num_kv_blocks=64, max_num_batched_tokens=2048).generate([prompt], GREEDY)
    chunked_llm = LLM("tiny", num_kv_blocks=64, max_num_batched_tokens=24)
    chunked = chunked_llm.generate([prompt, prompt[:40]], GREEDY)
    assert tokens(chunked)[0] == tokens(whole)[0]
    assert_clean(chunked_llm)


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(llm):
    p = SamplingParams(temperature=0.8, top_k=50, top_p=0.9, seed=123, max_tokens=10, ignore_eos=True)
    alone = tokens(llm.generate(["seeded"], p))[0]
    other = SamplingParams(temperature=1.0, seed=7, max_tokens=10, ignore_eos=True)
    mixed = llm.generate(["noise one", "seeded", "noise two"], [other, p, other])
    assert tokens(mixed)[1] == alone
    assert_clean(llm)


def test_stop_token_ids_and_stop_strings(llm):
    free = llm.generate(["stop test"], SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True))[0]
    ids = free.outputs[0].token_ids
    stop_id = ids[5]
    first = ids.index(stop_id)
    out = llm.generate(
        ["stop test"],
        SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True, stop_token_ids=(stop_id,)),
    )[0]
    assert out.outputs[0].token_ids == ids[: first + 1]
    assert out.outputs[0].finish_reason == "stop"
    text = free.outputs[0].text
    needle = next((text[i : i + 2] for i in range(3, len(text) - 2) if "\ufffd" not in text[i : i + 2]), None)
    if needle is not None:
        cut = llm.generate(
            ["stop test"], SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True, stop=(needle,))
        )[0]
        assert cut.outputs[0].text == text[: text.index(needle)]
        assert cut.outputs[0].finish_reason == "stop"
    assert_clean(llm)


@pytest.mark.parametrize(
    ("prompt", "params", "field"),
    [
        ("", GREEDY, "prompt"),
        ([], GREEDY, "prompt_token_ids"),
        ([1, 2, 99999], GREEDY, "prompt_token_ids"),
        ("x" * 300, GREEDY, "prompt"),
    ],
)
def test_bad_requests_raise_naming_the_field_and_the_engine_keeps_serving(prompt, params, field):
    llm = LLM("tiny", num_kv_blocks=64, max_model_len=256)
    good = llm.engine.add_request("still served", GREEDY, request_id="good")
    with pytest.raises(InvalidRequestError) as info:
        llm.engine.add_request(prompt, params, request_id="bad")
    assert info.value.field == field and info.value.request_id == "bad"
    assert "bad" in str(info.value)
    while llm.engine.has_unfinished():
        llm.engine.step()
    assert good.num_output_tokens == 12
    assert_clean(llm)


def test_invalid_sampling_params_name_the_field():
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(InvalidRequestError, match="top_p"):
        SamplingParams(top_p=0.0)


def test_bad_prompt_in_a_batch_rejects_the_batch_and_leaves_nothing_behind(llm):
    with pytest.raises(InvalidRequestError, match="prompt 1"):
        llm.generate(["fine", ""], GREEDY)
    assert_clean(llm)
    assert len(llm.generate(["fine"], GREEDY)) == 1


def test_unknown_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no-such-model"):
        LLM(str(tmp_path / "no-such-model"))


def test_prompt_at_context_limit_finishes_with_length():
    llm = LLM("tiny", num_kv_blocks=64, max_model_len=40)
    out = llm.generate([[3] * 35], SamplingParams(temperature=0.0, max_tokens=50, ignore_eos=True))[0]
    assert len(out.outputs[0].token_ids) == 5 and out.outputs[0].finish_reason == "length"
    assert_clean(llm)


def test_failing_step_fails_its_batch_and_the_engine_keeps_serving():
    from tether.runtime.engine.errors import EngineError

    llm = LLM("tiny", num_kv_blocks=64)
    llm.generate(["a prompt long enough to fill and cache a few blocks"], GREEDY)
    assert llm.engine.kv_manager.num_cached_blocks > 0
    real_run = llm.engine.runner.run

    def lost_device(plan, copies=None):
        llm.engine.runner.run = real_run
        raise RuntimeError("device lost")

    llm.engine.runner.run = lost_device
    with pytest.raises(EngineError, match="device lost"):
        llm.generate(["first", "second"], GREEDY)
    assert_clean(llm)
    assert llm.engine.kv_manager.num_cached_blocks == 0  # nothing written by the failed step can be hit
    assert len(llm.generate(["third"], GREEDY)[0].outputs[0].token_ids) == 12
    assert_clean(llm)


def test_tether_swaps_preempted_programs_to_cpu_and_outputs_stay_identical():
    """Swap preemption: a preempted program's computed blocks are parked in the CPU tier and copied back on
    re-admission (CPU hits, not recompute), and the greedy outputs equal an unconstrained run."""
    from tether.runtime.engine.sequence import ProgramHints

    rng = random.Random(2)
    prompts = [[rng.randrange(256) for _ in range(rng.randrange(20, 40))] for _ in range(12)]
    params = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    expected = tokens(LLM("tiny", num_kv_blocks=512).generate(prompts, params))
    tight = LLM("tiny", num_kv_blocks=14, policy="tether", num_cpu_kv_blocks=128)
    engine = tight.engine
    for i, prompt in enumerate(prompts):
        hints = ProgramHints(program_id=f"p{i}", turn=0, next_tool="bash", remaining_turns=1)
        engine.add_request(prompt, params, request_id=f"r{i}", hints=hints)
    done = {}
    while engine.has_unfinished():
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out.outputs[0].token_ids
    assert [done[f"r{i}"] for i in range(len(prompts))] == expected
    assert engine.scheduler.num_preemptions > 0
    assert engine.programs.stats.swapped_preemptions > 0
    assert engine.kv_manager.stats().cpu_hit_blocks > 0
    for i in range(len(prompts)):  # the turns ended in a tool call: their programs hold pins until they end
        engine.end_program(f"p{i}")
    engine.check_integrity()
    assert engine.kv_manager.num_used_blocks == 0 and engine.kv_manager.pins == {}
