"""The engine's torch backend equals the reference attention on mixed batches over permuted pages."""

from __future__ import annotations

import pytest
import torch

from tests.runtime.attention_batch import step_batch
from tether.kernels import torch_ops
from tether.runtime.engine.attention import TorchAttentionBackend


@pytest.mark.parametrize("cpu_kernels", [None, False], ids=["c++ decode", "torch decode"])
@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1), (8, 2)])
def test_mixed_batch_matches_reference(hq, hkv, cpu_kernels):
    g = torch.Generator().manual_seed(0)
    bs, d, nblocks = 4, 16, 40
    # (cached tokens before the step, new tokens): decodes, a cold prefill, an extend after a cached prefix
    shapes = [(9, 1), (0, 7), (5, 6), (16, 1), (0, 1)]
    perm = torch.randperm(nblocks, generator=g).tolist()
    tables = [[perm.pop() for _ in range((cached + new + bs - 1) // bs)] for cached, new in shapes]
    q, k, v, k_cache, v_cache, meta = step_batch(
        tables, shapes, hq=hq, hkv=hkv, d=d, num_blocks=nblocks, block_size=bs, generator=g
    )
    kc, vc = k_cache.clone(), v_cache.clone()
    backend = TorchAttentionBackend(cpu_kernels)
    out = backend.forward(q, k, v, k_cache, v_cache, meta)
    if cpu_kernels is None:
        from tether.kernels import cpu_decode

        assert backend._cpu_kernels is cpu_decode.load()
    torch_ops.store_kv(k, v, kc, vc, meta.slot_mapping)
    expected, _ = torch_ops.paged_attention(q, kc, vc, meta.block_table, meta.cu_seqlens_q, meta.kv_lens)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(k_cache, kc) and torch.equal(v_cache, vc)
