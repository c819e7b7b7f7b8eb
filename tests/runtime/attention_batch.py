"""One engine step's attention inputs over given page tables, for the attention backend tests."""

from __future__ import annotations

import torch

from tether.runtime.engine.attention import AttentionMetadata


def step_batch(
    tables: list[list[int]],
    steps: list[tuple[int, int]],
    *,
    hq: int,
    hkv: int,
    d: int,
    num_blocks: int,
    block_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, AttentionMetadata]:
    """``steps[s] = (cached tokens before the step, new tokens)`` of sequence ``s`` on page table ``tables[s]``.

    Returns random ``q [T, Hq, D]``, ``k, v [T, Hkv, D]``, random caches ``[num_blocks, block_size, Hkv, D]`` and
    the step's metadata (the new tokens' slots, zero-padded tables).
    """
    slots, q_lens, kv_lens = [], [], []
    for table, (cached, new) in zip(tables, steps, strict=True):
        n = cached + new
        slots += [table[p // block_size] * block_size + p % block_size for p in range(cached, n)]
        q_lens.append(new)
        kv_lens.append(n)
    k_cache = torch.randn(num_blocks, block_size, hkv, d, generator=generator)
    v_cache = torch.randn(num_blocks, block_size, hkv, d, generator=generator)
    t = sum(q_lens)
    q, k, v = (torch.randn(t, h, d, generator=generator) for h in (hq, hkv, hkv))
    width = max(map(len, tables))
    meta = AttentionMetadata(
        slot_mapping=torch.tensor(slots),
        block_table=torch.tensor([tb + [0] * (width - len(tb)) for tb in tables], dtype=torch.int32),
        cu_seqlens_q=torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32),
        kv_lens=torch.tensor(kv_lens, dtype=torch.int32),
        max_q_len=max(q_lens),
    )
    return q, k, v, k_cache, v_cache, meta
