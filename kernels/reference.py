"""Torch reference versions of the attention contract (the CPU path and the oracle for the Triton kernels).

``paged_attention`` semantics, per sequence ``s`` with ``q_len = cu_seqlens_q[s+1] - cu_seqlens_q[s]``::

    keys in cache:   0 ........................................ kv_lens[s]-1
    queries:                              [kv_lens[s]-q_len ... kv_lens[s]-1]   (causal positions)

With ``causal=True`` query ``i`` sits at position ``kv_lens[s] - q_len + i`` and sees keys ``0..position``;
with ``causal=False`` it sees all ``kv_lens[s]`` keys. A query that sees no key gives ``o = 0``, ``lse = -inf``.
"""

from __future__ import annotations

import math

import torch


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
    pages = cache[block_table_row[:num_blocks].long()]  # (nb, bs, Hkv, D)
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
