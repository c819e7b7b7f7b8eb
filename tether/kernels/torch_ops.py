"""Torch versions of the attention contract: the engine's CPU path (the torch backend) and the oracle the Triton
kernels are tested against.

``paged_attention`` semantics, per sequence ``s`` with ``q_len = cu_seqlens_q[s+1] - cu_seqlens_q[s]``::

    keys in cache:   0 ........................................ kv_lens[s]-1
    queries:                              [kv_lens[s]-q_len ... kv_lens[s]-1]   (causal positions)

With ``causal=True`` query ``i`` sits at position ``kv_lens[s] - q_len + i`` and sees keys ``0..position``;
with ``causal=False`` it sees all ``kv_lens[s]`` keys. A query that sees no key gives ``o = 0``, ``lse = -inf``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tether.kernels.contract import CascadeLevel


def store_kv(
    k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot_mapping: torch.Tensor
) -> None:
    """Write new tokens into their pages. ``k, v: [T, Hkv, D]``; ``slot_mapping: [T]`` (block * block_size +
    offset; a negative slot skips the token)."""
    num_blocks, block_size = k_cache.shape[:2]
    keep = slot_mapping >= 0
    slots = slot_mapping[keep].long()
    k_cache.view(num_blocks * block_size, *k_cache.shape[2:])[slots] = k[keep].to(k_cache.dtype)
    v_cache.view(num_blocks * block_size, *v_cache.shape[2:])[slots] = v[keep].to(v_cache.dtype)


def gather_kv(cache: torch.Tensor, block_table_row: torch.Tensor, kv_len: int) -> torch.Tensor:
    """The first ``kv_len`` tokens of one sequence as a contiguous ``[kv_len, Hkv, D]`` tensor."""
    block_size = cache.shape[1]
    num_blocks = (kv_len + block_size - 1) // block_size
    pages = cache.index_select(0, block_table_row[:num_blocks].long())  # (nb, bs, Hkv, D); faster than [idx]
    return pages.reshape(num_blocks * block_size, *cache.shape[2:])[:kv_len]


def dense_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, sm_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q: [Tq, Hq, D]`` over ``k, v: [Tk, Hkv, D]`` with the queries at the last ``Tq``
    positions of the keys (when causal). Returns ``o: [Tq, Hq, D]`` in q's dtype and ``lse: [Tq, Hq]`` fp32."""
    tq, hq, _ = q.shape
    tk, hkv, _ = k.shape
    group = hq // hkv
    qf = q.float().transpose(0, 1)  # (Hq, Tq, D)
    kf = k.float().repeat_interleave(group, dim=1).transpose(0, 1)  # (Hq, Tk, D)
    vf = v.float().repeat_interleave(group, dim=1).transpose(0, 1)  # (Hq, Tk, D)
    scores = torch.matmul(qf, kf.transpose(1, 2)) * sm_scale  # (Hq, Tq, Tk)
    if causal:
        q_pos = torch.arange(tk - tq, tk, device=q.device)[:, None]  # (Tq, 1)
        k_pos = torch.arange(tk, device=q.device)[None, :]  # (1, Tk)
        scores = scores.masked_fill(k_pos > q_pos, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # (Hq, Tq)
    probs = torch.exp(scores - lse.masked_fill(torch.isinf(lse), 0.0)[..., None])
    probs = torch.nan_to_num(probs, nan=0.0)
    o = torch.matmul(probs, vf)  # (Hq, Tq, D)
    return o.transpose(0, 1).to(q.dtype), lse.transpose(0, 1).contiguous()


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q: [T, Hq, D]``, ``block_table: int32 [S, max_blocks]``, ``cu_seqlens_q: int32 [S+1]``,
    ``kv_lens: int32 [S]``. Returns ``(o [T, Hq, D], lse [T, Hq] fp32)``."""
    if q.shape[1] % k_cache.shape[2] != 0:
        raise ValueError(f"Hq={q.shape[1]} is not a multiple of Hkv={k_cache.shape[2]}")
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    o = torch.zeros_like(q)
    lse = torch.full(q.shape[:2], float("-inf"), dtype=torch.float32, device=q.device)
    cu = cu_seqlens_q.tolist()
    lens = kv_lens.tolist()
    for s, kv_len in enumerate(lens):
        start, end = cu[s], cu[s + 1]
        if end == start or kv_len == 0:
            continue
        k = gather_kv(k_cache, block_table[s], kv_len)
        v = gather_kv(v_cache, block_table[s], kv_len)
        o[start:end], lse[start:end] = _attend_segment(q[start:end], k, v, causal=causal, sm_scale=scale)
    return o, lse


def _attend_segment(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, sm_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal queries may outnumber keys (they then see none for the first positions): pad the keys."""
    tq, tk = q.shape[0], k.shape[0]
    if causal and tq > tk:
        o = torch.zeros_like(q)
        lse = torch.full(q.shape[:2], float("-inf"), dtype=torch.float32, device=q.device)
        o[tq - tk :], lse[tq - tk :] = dense_attention(q[tq - tk :], k, v, causal=True, sm_scale=sm_scale)
        return o, lse
    return dense_attention(q, k, v, causal=causal, sm_scale=sm_scale)


def merge_attention_states(
    o_a: torch.Tensor, lse_a: torch.Tensor, o_b: torch.Tensor, lse_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact combination of two partial attentions over disjoint key sets (``o: [T, H, D]``, ``lse: [T, H]``).
    A side with ``lse = -inf`` contributes nothing; both ``-inf`` gives ``o = 0``, ``lse = -inf``."""
    lse = torch.logaddexp(lse_a, lse_b)  # (T, H)
    finite = torch.isfinite(lse)
    safe = torch.where(finite, lse, torch.zeros_like(lse))
    w_a = torch.where(finite, torch.exp(lse_a - safe), torch.zeros_like(lse))[..., None]
    w_b = torch.where(finite, torch.exp(lse_b - safe), torch.zeros_like(lse))[..., None]
    o = (o_a.float() * w_a + o_b.float() * w_b).to(o_a.dtype)
    return o, lse


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """By definition: ``paged_attention`` over ``prefix_blocks + own blocks`` with ``prefix_len + kv_lens``
    keys (``prefix_len`` a multiple of block_size)."""
    block_size = k_cache.shape[1]
    if prefix_len % block_size or prefix_blocks.shape[0] * block_size < prefix_len:
        raise ValueError(f"prefix_len={prefix_len} is not whole pages of {block_size} in prefix_blocks")
    num_prefix = prefix_len // block_size
    rows = prefix_blocks[:num_prefix].view(1, -1).expand(block_table.shape[0], -1)
    table = torch.cat([rows, block_table], dim=1)
    return paged_attention(
        q, k_cache, v_cache, table, cu_seqlens_q, kv_lens + prefix_len, causal=causal, sm_scale=sm_scale
    )


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """By definition: each sequence's pages are its level groups' pages (root first) and then its own; a
    level group's queries must be whole sequences and its length whole pages."""
    block_size = k_cache.shape[1]
    cu = cu_seqlens_q.tolist()
    rows: list[list[int]] = [[] for _ in range(block_table.shape[0])]
    extra = [0] * block_table.shape[0]
    for i, level in enumerate(levels):
        level_cu = level.cu_seqlens_q.tolist()
        for g, length in enumerate(level.kv_lens.tolist()):
            if length % block_size:
                raise ValueError(f"cascade level {i} group {g}: {length} tokens are not whole pages")
            members = [s for s in range(len(rows)) if level_cu[g] <= cu[s] and cu[s + 1] <= level_cu[g + 1]]
            if sum(cu[s + 1] - cu[s] for s in members) != level_cu[g + 1] - level_cu[g]:
                raise ValueError(f"cascade level {i} group {g}: queries do not fall on sequence boundaries")
            for s in members:
                rows[s] += level.block_table[g, : length // block_size].tolist()
                extra[s] += length
    full = [rows[s] + block_table[s].tolist() for s in range(len(rows))]
    width = max((len(r) for r in full), default=0)
    table = torch.tensor([r + [0] * (width - len(r)) for r in full], dtype=torch.int32, device=q.device)
    table = table.view(len(full), width)
    lens = kv_lens + torch.tensor(extra, dtype=kv_lens.dtype, device=kv_lens.device)
    return paged_attention(q, k_cache, v_cache, table, cu_seqlens_q, lens, causal=causal, sm_scale=sm_scale)
