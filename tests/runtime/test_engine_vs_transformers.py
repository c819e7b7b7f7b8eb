"""The whole engine (paged cache, batching, chunked prefill) against transformers on the same checkpoints."""

from __future__ import annotations

import random

import torch

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.scheduler import SchedulerOutput

MAX_NEW = 12


def prompts_for(vocab: int, lengths: tuple[int, ...], seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(n)] for n in lengths]


def hf_greedy(hf_model, prompt: list[int]) -> list[int]:
    ids = torch.tensor([prompt])
    out = hf_model.generate(  # an explicit mask: a prompt token equal to pad_token_id must not be masked
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=MAX_NEW,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    return out[0, len(prompt) :].tolist()


def test_greedy_batch_equals_transformers_generate(hf_checkpoint):
    prompts = prompts_for(256, (5, 17, 40, 1))
    llm = LLM(str(hf_checkpoint.path), num_kv_blocks=64, max_num_batched_tokens=32)  # chunked prefill too
    outs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=MAX_NEW, ignore_eos=True))
    for prompt, out in zip(prompts, outs):
        assert list(out.outputs[0].token_ids) == hf_greedy(hf_checkpoint.hf_model, prompt)
    llm.engine.check_integrity()
    assert llm.engine.kv_manager.num_used_blocks == 0


def test_batched_prefill_logits_match_transformers(hf_checkpoint):
    prompts = prompts_for(256, (7, 33, 20), seed=1)
    llm = LLM(str(hf_checkpoint.path), num_kv_blocks=64)
    engine = llm.engine
    seqs = [engine.add_request(p, SamplingParams(temperature=0.0, max_tokens=1)) for p in prompts]
    plan: SchedulerOutput = engine.scheduler.schedule()
    assert [c.num_new_tokens for c in plan.chunks] == [7, 33, 20]
    logits = engine.runner.forward_logits(engine.runner.prepare(plan))  # (3, V)
    with torch.no_grad():
        for row, prompt in enumerate(prompts):
            expected = hf_checkpoint.hf_model(torch.tensor([prompt])).logits[0, -1]
            torch.testing.assert_close(logits[row], expected, atol=1e-4, rtol=0)
    for seq in seqs:
        engine.abort(seq.request_id)
    engine.check_integrity()
