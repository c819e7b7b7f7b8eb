from __future__ import annotations

import torch

from tether.runtime.engine.sampler import Sampler
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import Sequence


def seq(params: SamplingParams, seed: int | None = None) -> Sequence:
    return Sequence("r", [1], params, seed=seed)


LOGITS = torch.tensor([[0.0, 3.0, 1.0, 2.9], [5.0, 0.0, 0.0, 0.0]])


def test_greedy_is_argmax_per_row():
    g = SamplingParams(temperature=0.0)
    assert Sampler()(LOGITS, [seq(g), seq(g)]) == [1, 0]


def test_top_k_one_is_argmax_even_when_sampling():
    p = SamplingParams(temperature=1.0, top_k=1)
    assert [Sampler()(LOGITS[:1], [seq(p, s)])[0] for s in range(20)] == [1] * 20


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    p = SamplingParams(temperature=1.0, top_p=0.5)
    assert {Sampler()(logits, [seq(p, s)])[0] for s in range(50)} == {0}
    p = SamplingParams(temperature=1.0, top_p=0.85)  # 0.6 + 0.3 cover it: token 2 is never drawn
    assert {Sampler()(logits, [seq(p, s)])[0] for s in range(200)} == {0, 1}


def test_seeded_request_draws_the_same_tokens_whatever_it_is_batched_with():
    p = SamplingParams(temperature=1.0, seed=3)
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    sampler, s = Sampler(), seq(p, 3)
    alone = [sampler(logits[1:2], [s])[0] for _ in range(8)]
    sampler, (a, b, c) = Sampler(), (seq(p, 11), seq(p, 3), seq(p, 12))
    batched = [sampler(logits, [a, b, c])[1] for _ in range(8)]
    assert alone == batched and len(set(alone)) > 1  # one generator per request, advancing over its tokens


def test_banned_ids_are_never_drawn():
    logits = torch.tensor([[10.0, 0.0, 0.0]])
    p = SamplingParams(temperature=0.0)
    assert Sampler()(logits, [seq(p)], banned=[(0,)]) != [0]
