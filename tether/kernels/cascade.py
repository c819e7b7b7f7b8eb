"""Shared-prefix (Hydragen-style) cascade: a prefix shared by many sequences is read once for all of them.

For one shared prefix (``shared_prefix_attention``) over S sequences with T queries in all::

    prefix pages  P0 P1 ... Pk-1            one non-causal "sequence" holding all T queries: every query
    ├─ seq 0: own pages A0 A1 ...           sees the whole prefix, so q[T, Hq, D] x prefix is one batched
    ├─ seq 1: own pages B0 ...              product (the prefix is read once per query tile, not per seq)
    └─ ...                                  + per-sequence causal attention over its own pages
                                            -> merged by log-sum-exp (fp32 until the last merge)

``cascade_attention`` generalises to a tree: each level's groups of consecutive sequences share pages; the
levels and the own pages are attended separately and merged in turn (root first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tether.kernels.contract import CascadeLevel, KernelInputError, check_attention_args, check_index_args
from tether.kernels.merge_kernels import merge_two
from tether.kernels.paged import attend, plan_launch
from tether.kernels.runtime import ensure_runnable


def cascade_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    levels: Sequence[CascadeLevel],
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
    *,
    causal: bool = True,
    sm_scale: float | None = None,
    max_q_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equals ``paged_attention`` over each sequence's concatenated pages (its level pages root first, then
    its own ``block_table`` row) with ``kv_lens`` grown by its level lengths; ``block_table``/``kv_lens``
    describe the own KV after the shared levels. Returns ``(o [T, Hq, D], lse [T, Hq] fp32)``."""
    check_attention_args(q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens)
    for i, level in enumerate(levels):
        try:
            check_index_args(level.block_table, level.cu_seqlens_q, level.kv_lens, q.device)
        except KernelInputError as e:
            raise KernelInputError(f"cascade level {i}: {e}") from None
    ensure_runnable(q.dtype, q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens)
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if max_q_len is None:
        max_q_len = int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max()) if kv_lens.shape[0] else 0
    o, lse = _attend_fp32(q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens, max_q_len, causal, scale)
    for i, level in enumerate(levels):
        level_q = level.max_q_len
        if level_q is None:
            level_q = (
                int((level.cu_seqlens_q[1:] - level.cu_seqlens_q[:-1]).max()) if level.kv_lens.shape[0] else 0
            )
        o_l, lse_l = _attend_fp32(
            q, k_cache, v_cache, level.block_table, level.cu_seqlens_q, level.kv_lens, level_q, False, scale
        )
        out_dtype = q.dtype if i == len(levels) - 1 else torch.float32
        o, lse = merge_two(o, lse, o_l, lse_l, out_dtype)
    return o.to(q.dtype), lse


def shared_prefix_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    prefix_blocks: torch.Tensor,
    prefix_len: int,
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
    *,
    causal: bool = True,
    sm_scale: float | None = None,
    max_q_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All sequences share ``prefix_len`` tokens (a multiple of block_size) in ``prefix_blocks: int32 [n]``;
    one cascade level holding every query."""
    level = prefix_level(prefix_blocks, prefix_len, q.shape[0], k_cache.shape[1], q.device)
    return cascade_attention(
        q, k_cache, v_cache, [level], block_table, cu_seqlens_q, kv_lens,
        causal=causal, sm_scale=sm_scale, max_q_len=max_q_len,
    )  # fmt: skip


def prefix_level(
    prefix_blocks: torch.Tensor, prefix_len: int, num_queries: int, block_size: int, device: torch.device
) -> CascadeLevel:
    """The single-group level of ``shared_prefix_attention``."""
    if (
        prefix_len % block_size
        or prefix_blocks.dim() != 1
        or prefix_blocks.shape[0] * block_size < prefix_len
    ):
        raise KernelInputError(
            f"prefix_len={prefix_len} must be a multiple of block_size={block_size} covered by prefix_blocks "
            f"{tuple(prefix_blocks.shape)}"
        )
    return CascadeLevel(
        block_table=prefix_blocks.view(1, -1),
        cu_seqlens_q=torch.tensor([0, num_queries], dtype=torch.int32, device=device),
        kv_lens=torch.tensor([prefix_len], dtype=torch.int32, device=device),
        max_q_len=num_queries,
    )


def _attend_fp32(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
    max_q_len: int,
    causal: bool,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One part of the cascade with an fp32 output (the merges stay exact until the last)."""
    t, hq, d = q.shape
    out = (
        torch.empty((t, hq, d), dtype=torch.float32, device=q.device),
        torch.empty((t, hq), dtype=torch.float32, device=q.device),
    )
    max_kv = block_table.shape[1] * k_cache.shape[1]
    plan = plan_launch(q, k_cache, kv_lens.shape[0], max_q_len, max_kv, split=True)
    return attend(
        q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens, plan, causal=causal, sm_scale=scale, out=out
    )
