"""SmolLM2-135M-Instruct (from its wheel's GGUF file) against transformers loading the same file: greedy
tokens equal at batch 1 and batched, the cached-prefix path equals a cold run, chat answers stop at the
template's end of turn."""

from __future__ import annotations

import torch

from runtime import SamplingParams
from tests.smollm2 import CHAT_PROMPTS, conversation

NEW_TOKENS = 32
GREEDY_32 = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, ignore_eos=True)


def hf_greedy(model, prompt_ids: tuple[int, ...], n: int = NEW_TOKENS) -> list[int]:
    ids = torch.tensor([list(prompt_ids)])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    return out[0, ids.shape[1] :].tolist()


def test_greedy_tokens_equal_transformers_at_batch_1_and_batched(smollm2, smollm2_transformers):
    conversations = [conversation(p) for p in CHAT_PROMPTS]
    batched = smollm2.chat(conversations, GREEDY_32)
    alone = [smollm2.chat(c, GREEDY_32)[0] for c in conversations]
    for b, a in zip(batched, alone):
        expected = hf_greedy(smollm2_transformers, b.prompt_token_ids)
        assert list(b.outputs[0].token_ids) == expected, b.prompt
        assert list(a.outputs[0].token_ids) == expected, a.prompt
    smollm2.engine.check_integrity()


def test_second_turn_on_cached_kv_equals_a_cold_run(smollm2):
    engine = smollm2.engine
    first = [{"role": "user", "content": "Name a planet in our solar system."}]
    answer = smollm2.chat(first, SamplingParams(temperature=0.0, max_tokens=24))[0].outputs[0].text
    second = first + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "How far is it from the Sun?"},
    ]
    warm = smollm2.chat(second, GREEDY_32)[0]
    assert warm.num_cached_tokens >= 32  # the first turn's prompt blocks were reused
    engine.kv_manager.reset_prefix_cache()
    cold = smollm2.chat(second, GREEDY_32)[0]
    assert cold.num_cached_tokens == 0
    assert warm.outputs[0].token_ids == cold.outputs[0].token_ids
    engine.check_integrity()


def test_chat_answer_stops_at_end_of_turn(smollm2):
    im_end = smollm2.tokenizer.encode("<|im_end|>")[-1]
    assert im_end in smollm2.tokenizer.eos_token_ids
    out = smollm2.chat(
        conversation("What is the capital of France?"), SamplingParams(temperature=0.0, max_tokens=64)
    )
    completion = out[0].outputs[0]
    assert completion.finish_reason == "stop"
    assert completion.token_ids[-1] == im_end
    assert "Paris" in completion.text and "<|im_end|>" not in completion.text
    smollm2.engine.check_integrity()
