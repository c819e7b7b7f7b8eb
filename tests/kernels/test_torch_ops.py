"""The torch versions of the attention contract: the oracle the Triton kernels are tested against."""

from __future__ import annotations

import math

import pytest
import torch

from tether.kernels import torch_ops


def paged(kv: torch.Tensor, block_size: int, perm: list[int], num_blocks: int) -> torch.Tensor:
    """Scatter ``kv: [L, H, D]`` into a cache of ``num_blocks`` pages at the pages in ``perm``."""
    cache = torch.zeros(num_blocks, block_size, *kv.shape[1:])
    for i in range(0, kv.shape[0], block_size):
        chunk = kv[i : i + block_size]
        cache[perm[i // block_size], : chunk.shape[0]] = chunk
    return cache


@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_paged_equals_dense_over_permuted_pages(hq, hkv, causal):
    g = torch.Generator().manual_seed(0)
    bs, d, kv_len, q_len = 4, 8, 11, 3
    k, v = torch.randn(kv_len, hkv, d, generator=g), torch.randn(kv_len, hkv, d, generator=g)
    q = torch.randn(q_len, hq, d, generator=g)
    perm = [5, 1, 3]
    kc, vc = paged(k, bs, perm, 6), paged(v, bs, perm, 6)
    o, lse = torch_ops.paged_attention(
        q,
        kc,
        vc,
        torch.tensor([perm], dtype=torch.int32),
        torch.tensor([0, q_len], dtype=torch.int32),
        torch.tensor([kv_len], dtype=torch.int32),
        causal=causal,
    )
    eo, else_ = torch_ops.dense_attention(q, k, v, causal=causal, sm_scale=1 / math.sqrt(d))
    torch.testing.assert_close(o, eo)
    torch.testing.assert_close(lse, else_)


def test_split_keys_and_merge_equals_whole():
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(5, 4, 8, generator=g),
        torch.randn(20, 2, 8, generator=g),
        torch.randn(20, 2, 8, generator=g),
    )
    whole = torch_ops.dense_attention(q, k, v, causal=False, sm_scale=0.3)
    for cut in (1, 7, 19):
        a = torch_ops.dense_attention(q, k[:cut], v[:cut], causal=False, sm_scale=0.3)
        b = torch_ops.dense_attention(q, k[cut:], v[cut:], causal=False, sm_scale=0.3)
        o, lse = torch_ops.merge_attention_states(*a, *b)
        torch.testing.assert_close(o, whole[0])
        torch.testing.assert_close(lse, whole[1])


def test_queries_that_see_no_key_give_zero_and_minus_inf():
    q = torch.randn(3, 2, 4)
    k = v = torch.randn(1, 2, 4)
    o, lse = torch_ops._attend_segment(q, k, v, causal=True, sm_scale=0.5)  # 3 queries, 1 key: 2 see nothing
    assert torch.equal(o[:2], torch.zeros(2, 2, 4)) and torch.isinf(lse[:2]).all() and (lse[:2] < 0).all()
    assert torch.isfinite(lse[2]).all()


def test_merge_handles_minus_inf_on_either_side():
    o = torch.randn(2, 3, 4)
    lse = torch.randn(2, 3)
    empty_o, empty_lse = torch.zeros(2, 3, 4), torch.full((2, 3), float("-inf"))
    for args in ((o, lse, empty_o, empty_lse), (empty_o, empty_lse, o, lse)):
        mo, mlse = torch_ops.merge_attention_states(*args)
        torch.testing.assert_close(mo, o)
        torch.testing.assert_close(mlse, lse)
    mo, mlse = torch_ops.merge_attention_states(empty_o, empty_lse, empty_o, empty_lse)
    assert torch.equal(mo, empty_o) and torch.isinf(mlse).all() and not torch.isnan(mo).any()


def test_store_kv_writes_slots_and_skips_negative():
    kc, vc = torch.zeros(3, 2, 1, 1), torch.zeros(3, 2, 1, 1)
    k = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    torch_ops.store_kv(k, -k, kc, vc, torch.tensor([5, -1, 0]))
    assert kc.flatten().tolist() == [3.0, 0, 0, 0, 0, 1.0]
    assert vc.flatten().tolist() == [-3.0, 0, 0, 0, 0, -1.0]


def test_shared_prefix_reference_equals_dense_over_prefix_then_own_keys():
    g = torch.Generator().manual_seed(3)
    bs, d, hq, hkv = 4, 8, 4, 2
    prefix_k, prefix_v = torch.randn(8, hkv, d, generator=g), torch.randn(8, hkv, d, generator=g)
    own = [(torch.randn(n, hkv, d, generator=g), torch.randn(n, hkv, d, generator=g)) for n in (3, 6)]
    q_lens = [1, 4]
    q = torch.randn(sum(q_lens), hq, d, generator=g)
    kc, vc = torch.zeros(8, bs, hkv, d), torch.zeros(8, bs, hkv, d)
    kc[[6, 2]] = prefix_k.view(2, bs, hkv, d)
    vc[[6, 2]] = prefix_v.view(2, bs, hkv, d)
    tables = [[5], [0, 7]]
    for (k, v), table in zip(own, tables):
        for i in range(k.shape[0]):
            kc[table[i // bs], i % bs], vc[table[i // bs], i % bs] = k[i], v[i]
    o, lse = torch_ops.shared_prefix_attention(
        q,
        kc,
        vc,
        torch.tensor([6, 2], dtype=torch.int32),
        8,
        torch.tensor([[5, 0], [0, 7]], dtype=torch.int32),
        torch.tensor([0, 1, 5], dtype=torch.int32),
        torch.tensor([3, 6], dtype=torch.int32),
    )
    for s, (start, end) in enumerate([(0, 1), (1, 5)]):
        k = torch.cat([prefix_k, own[s][0]])
        v = torch.cat([prefix_v, own[s][1]])
        eo, else_ = torch_ops.dense_attention(q[start:end], k, v, causal=True, sm_scale=1 / math.sqrt(d))
        torch.testing.assert_close(o[start:end], eo)
        torch.testing.assert_close(lse[start:end], else_)


def test_shared_prefix_reference_refuses_a_partial_page():
    q, cache = torch.zeros(1, 1, 4), torch.zeros(2, 4, 1, 4)
    i32 = torch.zeros(1, 1, dtype=torch.int32)
    with pytest.raises(ValueError, match="not whole pages"):
        torch_ops.shared_prefix_attention(
            q, cache, cache, torch.tensor([1], dtype=torch.int32), 3, i32,
            torch.tensor([0, 1], dtype=torch.int32), torch.ones(1, dtype=torch.int32),
        )  # fmt: skip
