"""``paged_attention``: one entry point for prefill, extend and decode, and the launcher the cascade reuses.

Dispatch: every sequence with at most one query (decode) and ``S * Hkv`` programs too few to fill the GPU ->
split-KV decode (the same kernel over ``NUM_SPLITS`` key ranges, fp32 partials, then ``reduce_splits``);
otherwise one pass, grid ``(query tiles, Hkv, S)``. The key bound for the split sizes comes from the block
table's width (no device sync).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tether.kernels.attention_kernel import LOG2E, paged_attention_kernel
from tether.kernels.contract import check_attention_args
from tether.kernels.merge_kernels import reduce_splits
from tether.kernels.runtime import ensure_runnable, interpreted, num_sms
from tether.kernels.tiles import (
    GPU_MIN_KEYS_PER_SPLIT,
    TileConfig,
    attention_tiles,
    block_d,
    choose_num_splits,
    split_size,
)


@dataclass(frozen=True)
class LaunchPlan:
    tiles: TileConfig
    q_tiles: int  # grid dim 0: query tiles per sequence
    num_splits: int
    split_size: int  # keys per split (a multiple of BLOCK_N)


def plan_launch(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    num_seqs: int,
    max_q_len: int,
    max_kv_len: int,
    *,
    split: bool,
    tiles: TileConfig | None = None,
    num_splits: int | None = None,
) -> LaunchPlan:
    """Tiles from the shapes; ``split=True`` lets the key range be split when the grid cannot fill the GPU
    (``num_splits`` forces a count)."""
    group = q.shape[1] // k_cache.shape[2]
    interp = interpreted()
    tiles = tiles or attention_tiles(q.shape[2], group, q.element_size(), max_q_len <= 1, interp)
    q_tiles = max(1, math.ceil(max_q_len / tiles.tokens_per_tile(group)))
    if num_splits is None:
        num_splits = 1
        if split:
            programs = q_tiles * k_cache.shape[2] * num_seqs
            min_keys = tiles.block_n if interp else GPU_MIN_KEYS_PER_SPLIT
            num_splits = choose_num_splits(programs, max_kv_len, num_sms(q.device), min_keys)
    size = split_size(max_kv_len, num_splits, tiles.block_n) if num_splits > 1 else 1 << 30
    return LaunchPlan(tiles=tiles, q_tiles=q_tiles, num_splits=num_splits, split_size=size)


def attend(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
    plan: LaunchPlan,
    *,
    causal: bool,
    sm_scale: float,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel (and the split reduction) as ``plan`` says; checked arguments, no sync."""
    t, hq, d = q.shape
    num_seqs, hkv = kv_lens.shape[0], k_cache.shape[2]
    o, lse = out or (
        torch.empty((t, hq, d), dtype=q.dtype, device=q.device),
        torch.empty((t, hq), dtype=torch.float32, device=q.device),
    )
    if t == 0 or num_seqs == 0:
        return o, lse
    if plan.num_splits > 1:
        o_dst = torch.empty((plan.num_splits, t, hq, d), dtype=torch.float32, device=q.device)
        lse_dst = torch.empty((plan.num_splits, t, hq), dtype=torch.float32, device=q.device)
        so, sl = o_dst.stride(), lse_dst.stride()
    else:
        o_dst, lse_dst = o, lse
        so, sl = (0, *o.stride()), (0, *lse.stride())
    tiles = plan.tiles
    grid = (plan.q_tiles, hkv, num_seqs * plan.num_splits)
    paged_attention_kernel[grid](
        q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens, o_dst, lse_dst,
        sm_scale * LOG2E, plan.split_size, d,
        *q.stride(), *k_cache.stride(), *v_cache.stride(), *block_table.stride(), *so, *sl,
        GROUP=hq // hkv, PAGE_SIZE=k_cache.shape[1], BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n,
        BLOCK_D=block_d(d), NUM_SPLITS=plan.num_splits, CAUSAL=causal,
        DOT_PRECISION="tf32x3" if q.dtype == torch.float32 else "tf32",
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )  # fmt: skip
    if plan.num_splits > 1:
        reduce_splits(o_dst, lse_dst, o, lse)
    return o, lse


def paged_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
    *,
    causal: bool = True,
    sm_scale: float | None = None,
    max_q_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The contract of ``tether.kernels.paged_attention``; ``max_q_len`` (the longest query run) saves a device
    sync when the caller knows it."""
    check_attention_args(q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens)
    ensure_runnable(q.dtype, q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens)
    if max_q_len is None:
        max_q_len = int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max()) if kv_lens.shape[0] else 0
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    max_kv_len = block_table.shape[1] * k_cache.shape[1]
    plan = plan_launch(q, k_cache, kv_lens.shape[0], max_q_len, max_kv_len, split=max_q_len <= 1)
    return attend(
        q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens, plan, causal=causal, sm_scale=scale
    )
