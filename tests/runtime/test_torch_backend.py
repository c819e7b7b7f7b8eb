"""The engine's torch backend equals the reference attention on mixed batches over permuted pages."""

from __future__ import annotations

import pytest
import torch

from kernels import reference
from runtime.engine.attention import AttentionMetadata, TorchAttentionBackend


@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1), (8, 2)])
def test_mixed_batch_matches_reference(hq, hkv):
    g = torch.Generator().manual_seed(0)
    bs, d, nblocks = 4, 16, 40
    # (cached tokens before the step, new tokens): decodes, a cold prefill, an extend after a cached prefix
    shapes = [(9, 1), (0, 7), (5, 6), (16, 1), (0, 1)]
    perm = torch.randperm(nblocks, generator=g).tolist()
    tables, slots, q_lens, kv_lens = [], [], [], []
    for cached, new in shapes:
        n = cached + new
        table = [perm.pop() for _ in range((n + bs - 1) // bs)]
        tables.append(table)
        slots += [table[p // bs] * bs + p % bs for p in range(cached, n)]
        q_lens.append(new)
        kv_lens.append(n)
    k_cache = torch.randn(nblocks, bs, hkv, d, generator=g)
    v_cache = torch.randn(nblocks, bs, hkv, d, generator=g)
    t = sum(q_lens)
    q, k, v = (torch.randn(t, h, d, generator=g) for h in (hq, hkv, hkv))
    width = max(map(len, tables))
    meta = AttentionMetadata(
        slot_mapping=torch.tensor(slots),
        block_table=torch.tensor([tb + [0] * (width - len(tb)) for tb in tables], dtype=torch.int32),
        cu_seqlens_q=torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32),
        kv_lens=torch.tensor(kv_lens, dtype=torch.int32),
        max_q_len=max(q_lens),
    )
    kc, vc = k_cache.clone(), v_cache.clone()
    out = TorchAttentionBackend().forward(q, k, v, k_cache, v_cache, meta)
    reference.store_kv(k, v, kc, vc, meta.slot_mapping)
    expected, _ = reference.paged_attention(q, kc, vc, meta.block_table, meta.cu_seqlens_q, meta.kv_lens)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(k_cache, kc) and torch.equal(v_cache, vc)
