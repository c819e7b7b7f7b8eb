"""The torch backend for any device: one padded batched product for all decoding sequences, SDPA per
sequence for prefill and extend chunks. ``kernels.reference`` stays the plain oracle it is tested against."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels import reference
from runtime.engine.attention.base import AttentionMetadata


class TorchAttentionBackend:
    name = "torch"

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        reference.store_kv(k, v, k_cache, v_cache, meta.slot_mapping)
        scale = 1.0 / math.sqrt(q.shape[-1])
        o = torch.empty_like(q)
        cu = meta.cu_seqlens_q.tolist()
        kv_lens = meta.kv_lens.tolist()
        decode = [s for s in range(len(kv_lens)) if cu[s + 1] - cu[s] == 1]
        if decode:
            rows = [cu[s] for s in decode]
            o[rows] = decode_attention(
                q[rows], k_cache, v_cache, meta.block_table[decode], meta.kv_lens[decode], scale
            )
        for s in range(len(kv_lens)):
            start, end = cu[s], cu[s + 1]
            if end - start > 1:
                kk = reference.gather_kv(k_cache, meta.block_table[s], kv_lens[s])
                vv = reference.gather_kv(v_cache, meta.block_table[s], kv_lens[s])
                o[start:end] = prefill_attention(q[start:end], kk, vv, scale)
        return o


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    kv_lens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """One query per sequence. ``q: [S, Hq, D]``, ``block_table: [S, maxB]``, ``kv_lens: [S]`` -> ``[S, Hq, D]``."""
    num_seqs, hq, d = q.shape
    bs, hkv = k_cache.shape[1], k_cache.shape[2]
    nb = (int(kv_lens.max()) + bs - 1) // bs
    pages = block_table[:, :nb].long()  # (S, nb)
    k = k_cache[pages].reshape(num_seqs, nb * bs, hkv, d).float()  # (S, L, Hkv, D)
    v = v_cache[pages].reshape(num_seqs, nb * bs, hkv, d).float()  # (S, L, Hkv, D)
    qg = q.float().view(num_seqs, hkv, hq // hkv, d)  # (S, Hkv, G, D): q head h reads kv head h // G
    scores = torch.einsum("shgd,slhd->shgl", qg, k) * scale  # (S, Hkv, G, L)
    pad = torch.arange(nb * bs, device=q.device)[None, :] >= kv_lens[:, None].long()  # (S, L)
    scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("shgl,slhd->shgd", probs, v)  # (S, Hkv, G, D)
    return out.reshape(num_seqs, hq, d).to(q.dtype)


def prefill_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal attention of ``q: [Tq, Hq, D]`` at the last ``Tq`` positions of ``k, v: [Tk, Hkv, D]``."""
    tq, hq, _ = q.shape
    tk, hkv, _ = k.shape
    group = hq // hkv
    qh = q.transpose(0, 1)  # (Hq, Tq, D)
    kh = k.repeat_interleave(group, dim=1).transpose(0, 1)  # (Hq, Tk, D)
    vh = v.repeat_interleave(group, dim=1).transpose(0, 1)  # (Hq, Tk, D)
    if tq == tk:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale)
    else:
        q_pos = torch.arange(tk - tq, tk, device=q.device)[:, None]  # (Tq, 1)
        mask = torch.arange(tk, device=q.device)[None, :] <= q_pos  # (Tq, Tk)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale)
    return out.transpose(0, 1)  # (Tq, Hq, D)
