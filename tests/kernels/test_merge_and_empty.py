"""Merging by log-sum-exp is exact (split keys anywhere, merge, equals the whole); segments that see no key give
``o = 0, lse = -inf`` and never NaN, in the kernel and in the merge."""

from __future__ import annotations

import pytest
import torch

from tests.kernels.batches import assert_attention_close, make_batch
from tests.kernels.conftest import kernel_dtypes
from tether.kernels import torch_ops

pytest.importorskip("triton")

import tether.kernels as kernels  # noqa: E402


def paged_from_dense(kv: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``kv: [L, H, D]`` into reversed pages (a permutation) -> (cache, block_table row)."""
    n = max(1, -(-kv.shape[0] // block_size))
    cache = torch.zeros(n, block_size, *kv.shape[1:], dtype=kv.dtype, device=kv.device)
    cache.view(n * block_size, *kv.shape[1:])[: kv.shape[0]] = kv
    order = torch.arange(n - 1, -1, -1, device=kv.device)
    return cache[order].contiguous(), order.to(torch.int32).view(1, n)


def attend_keys(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kc, table = paged_from_dense(k, 8)
    vc, _ = paged_from_dense(v, 8)
    dev = q.device
    cu = torch.tensor([0, q.shape[0]], dtype=torch.int32, device=dev)
    lens = torch.tensor([k.shape[0]], dtype=torch.int32, device=dev)
    return kernels.paged_attention(q, kc, vc, table, cu, lens, causal=False, sm_scale=0.3)


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
def test_split_keys_anywhere_and_merge_equals_whole(dtype, device):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(n, h, 32, generator=g).to(dtype).to(device) for n, h in ((5, 4), (37, 2), (37, 2)))
    whole = attend_keys(q, k, v)
    for cut in (0, 1, 8, 20, 36, 37):  # 0 and 37: one side empty (lse = -inf)
        a = attend_keys(q, k[:cut], v[:cut])
        b = attend_keys(q, k[cut:], v[cut:])
        assert torch.isinf(a[1]).all() == (cut == 0) and torch.isinf(b[1]).all() == (cut == 37)
        assert_attention_close(kernels.merge_attention_states(*a, *b), whole)
    expected = torch_ops.dense_attention(q, k, v, causal=False, sm_scale=0.3)
    assert_attention_close(whole, expected)


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
def test_merge_equals_reference_and_handles_minus_inf(dtype, device):
    g = torch.Generator().manual_seed(2)
    o_a, o_b = (torch.randn(6, 3, 40, generator=g).to(dtype).to(device) for _ in range(2))
    lse_a, lse_b = (4 * torch.randn(6, 3, generator=g).to(device) for _ in range(2))
    lse_a[0], lse_b[1] = float("-inf"), float("-inf")
    lse_a[2, 1] = lse_b[2, 1] = float("-inf")
    o_a[0], o_b[1] = 0, 0
    o_a[2, 1] = o_b[2, 1] = 0
    got = kernels.merge_attention_states(o_a, lse_a, o_b, lse_b)
    assert_attention_close(got, torch_ops.merge_attention_states(o_a, lse_a, o_b, lse_b))
    o, lse = got
    assert torch.equal(o[2, 1].float().cpu(), torch.zeros(40)) and lse[2, 1] == float("-inf")
    torch.testing.assert_close(o[0], o_b[0])  # an empty side leaves the other exactly
    torch.testing.assert_close(lse[1], lse_a[1])


def test_queries_that_see_no_key(device):
    """kv_lens = 0 (nothing cached), and more causal queries than keys: the first ones see nothing. A
    sequence with no queries in the batch writes nothing."""
    batch = make_batch([(0, 3), (0, 4), (5, 2)], 4, 2, 32, torch.float32, device, seed=5)
    kv_lens = torch.tensor([0, 2, 7], dtype=torch.int32, device=device)  # seq 1: 4 queries, 2 keys
    cu = torch.tensor([0, 3, 7, 7], dtype=torch.int32, device=device)  # seq 2: no queries
    args = (batch.q[:7], batch.k_cache, batch.v_cache, batch.block_table, cu, kv_lens)
    o, lse = kernels.paged_attention(*args)
    assert torch.equal(o[:5].cpu(), torch.zeros(5, 4, 32)) and (lse[:5] == float("-inf")).all()
    assert torch.isfinite(lse[5:]).all() and not torch.isnan(o).any()
    assert_attention_close((o, lse), torch_ops.paged_attention(*args))
