"""The torch backend for any device: one padded batched SDPA for all decoding sequences, SDPA per sequence for
prefill and extend chunks. ``tether.kernels.torch_ops`` is the plain version it is tested against.

On CPU, decode rows in float32 or bfloat16 go to the C++ kernel ``tether.kernels.cpu_decode`` instead (it reads
the pages in place rather than gathering them), when it builds on this machine (``cpu_kernels=None``: use it
where it loads; ``False``: never).

Everything that depends only on the step (which rows decode, their pages, the padding mask, host copies of
the offsets) is computed once per ``AttentionMetadata`` in a ``StepPlan`` and reused by every layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tether.kernels import torch_ops
from tether.runtime.engine.attention.base import AttentionMetadata


@dataclass(frozen=True)
class StepPlan:
    """Per-step facts shared by all layers.

    slots:        int64 [T']            cache slot of every new token that is stored (negative slots skipped)
    keep:         bool  [T] or None     which new tokens are stored (``None``: all of them)
    decode_rows:  int64 [Sd]            flat row of each single-token (decode) sequence
    decode_pages: int64 [Sd, nb]        their first ``nb`` pages (``nb`` covers the longest)
    decode_mask:  bool  [Sd, 1, 1, L]   True where a key position is inside the sequence (``None``: no padding)
    decode_table: int32 [Sd, maxB]      their block-table rows (the C++ decode kernel's input; CPU only)
    decode_lens:  int32 [Sd]            their cached lengths (CPU only)
    chunks:       (start, end, kv_len, s) of every multi-token (prefill / extend) chunk
    """

    slots: torch.Tensor
    keep: torch.Tensor | None
    decode_rows: torch.Tensor | None
    decode_pages: torch.Tensor | None
    decode_mask: torch.Tensor | None
    all_decode: bool
    chunks: tuple[tuple[int, int, int, int], ...]
    decode_table: torch.Tensor | None = None
    decode_lens: torch.Tensor | None = None


def plan_step(meta: AttentionMetadata, block_size: int) -> StepPlan:
    cu = meta.cu_seqlens_q.tolist()
    kv_lens = meta.kv_lens.tolist()
    decode = [s for s in range(len(kv_lens)) if cu[s + 1] - cu[s] == 1]
    chunks = tuple((cu[s], cu[s + 1], kv_lens[s], s) for s in range(len(kv_lens)) if cu[s + 1] - cu[s] > 1)
    keep = None if bool((meta.slot_mapping >= 0).all()) else meta.slot_mapping >= 0
    slots = meta.slot_mapping.long() if keep is None else meta.slot_mapping[keep].long()
    if not decode:
        return StepPlan(slots, keep, None, None, None, False, chunks)
    dev = meta.block_table.device
    lens = [kv_lens[s] for s in decode]
    nb = (max(lens) + block_size - 1) // block_size
    pages = meta.block_table[decode, :nb].long()  # (Sd, nb)
    mask = None
    if any(n != nb * block_size for n in lens):
        positions = torch.arange(nb * block_size, device=dev)[None, :]  # (1, L)
        mask = (positions < torch.tensor(lens, device=dev)[:, None])[:, None, None, :]  # (Sd, 1, 1, L)
    rows = torch.tensor([cu[s] for s in decode], dtype=torch.int64, device=dev)
    all_decode = not chunks and len(decode) == len(kv_lens)
    if dev.type != "cpu":  # the C++ decode kernel's inputs: CPU only
        return StepPlan(slots, keep, rows, pages, mask, all_decode, chunks)
    table = meta.block_table[decode].to(torch.int32)  # (Sd, maxB)
    lens_t = torch.tensor(lens, dtype=torch.int32)  # (Sd,)
    return StepPlan(slots, keep, rows, pages, mask, all_decode, chunks, table, lens_t)


class TorchAttentionBackend:
    name = "torch"

    def __init__(self, cpu_kernels: bool | None = None) -> None:
        self._meta: AttentionMetadata | None = None
        self._plan: StepPlan | None = None
        self._cpu_kernels = cpu_kernels  # None: the C++ decode kernel where it loads (decided on first use)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        if meta is not self._meta:  # the first layer of a new step
            self._plan, self._meta = plan_step(meta, k_cache.shape[1]), meta
        plan = self._plan
        assert plan is not None
        store_kv(k, v, k_cache, v_cache, plan)
        scale = 1.0 / math.sqrt(q.shape[-1])
        decode = self._cpu_decode if self._use_cpu_kernel(q, k_cache) else _torch_decode
        if plan.all_decode:
            return decode(q, k_cache, v_cache, plan, scale)
        o = torch.empty_like(q)
        if plan.decode_rows is not None:
            rows = plan.decode_rows
            o[rows] = decode(q[rows], k_cache, v_cache, plan, scale)
        for start, end, kv_len, s in plan.chunks:
            kk = torch_ops.gather_kv(k_cache, meta.block_table[s], kv_len)
            vv = torch_ops.gather_kv(v_cache, meta.block_table[s], kv_len)
            o[start:end] = prefill_attention(q[start:end], kk, vv, scale)
        return o

    def _use_cpu_kernel(self, q: torch.Tensor, k_cache: torch.Tensor) -> bool:
        if (
            q.device.type != "cpu"
            or q.dtype != k_cache.dtype
            or q.dtype not in (torch.float32, torch.bfloat16)
        ):
            return False
        if self._cpu_kernels is None:
            from tether.kernels import cpu_decode

            self._cpu_kernels = cpu_decode.load()
        return self._cpu_kernels

    @staticmethod
    def _cpu_decode(
        q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, plan: StepPlan, scale: float
    ) -> torch.Tensor:
        from tether.kernels import cpu_decode

        assert plan.decode_table is not None and plan.decode_lens is not None
        return cpu_decode.paged_decode(q, k_cache, v_cache, plan.decode_table, plan.decode_lens, scale)


def _torch_decode(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, plan: StepPlan, scale: float
) -> torch.Tensor:
    assert plan.decode_pages is not None
    return decode_attention(q, k_cache, v_cache, plan.decode_pages, plan.decode_mask, scale)


def store_kv(
    k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, plan: StepPlan
) -> None:
    """``torch_ops.store_kv`` with the step's slots computed once: ``k, v: [T, Hkv, D]`` into their pages."""
    if plan.keep is not None:
        k, v = k[plan.keep], v[plan.keep]
    if k.dtype != k_cache.dtype:
        k, v = k.to(k_cache.dtype), v.to(v_cache.dtype)
    flat = (-1, *k_cache.shape[2:])  # (num_blocks * block_size, Hkv, D)
    k_cache.view(flat).index_copy_(0, plan.slots, k)
    v_cache.view(flat).index_copy_(0, plan.slots, v)


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pages: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """One query per sequence. ``q: [S, Hq, D]``, ``pages: [S, nb]``, ``mask: [S, 1, 1, nb * bs]`` or ``None``
    (every page full) -> ``[S, Hq, D]``. Query head h reads kv head ``h // (Hq / Hkv)``."""
    num_seqs, _, d = q.shape
    bs, hkv = k_cache.shape[1], k_cache.shape[2]
    length = pages.shape[1] * bs
    # index_select, not k_cache[pages]: the same copy, about 6x faster on CPU than advanced indexing.
    flat = pages.reshape(-1)  # (S * nb,)
    k = k_cache.index_select(0, flat).view(num_seqs, length, hkv, d).transpose(1, 2)  # (S, Hkv, L, D)
    v = v_cache.index_select(0, flat).view(num_seqs, length, hkv, d).transpose(1, 2)  # (S, Hkv, L, D)
    # Attention in fp32: SDPA's CPU kernel is fast there (and slow in bf16 / fp16); the casts cost less.
    dtype = q.dtype
    if dtype != torch.float32:
        q, k, v = q.float(), k.float(), v.float()
    out = F.scaled_dot_product_attention(q.unsqueeze(2), k, v, attn_mask=mask, scale=scale, enable_gqa=True)
    out = out.squeeze(2)  # (S, Hq, D)
    return out if dtype == torch.float32 else out.to(dtype)


def prefill_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal attention of ``q: [Tq, Hq, D]`` at the last ``Tq`` positions of ``k, v: [Tk, Hkv, D]``.

    Inputs get a batch dim of 1: SDPA's CPU flash kernel takes 4-D tensors only (3-D ones fall back to the
    math path, several times slower on long prompts)."""
    tq = q.shape[0]
    tk = k.shape[0]
    qh = q.transpose(0, 1).unsqueeze(0)  # (1, Hq, Tq, D)
    kh = k.transpose(0, 1).unsqueeze(0)  # (1, Hkv, Tk, D)
    vh = v.transpose(0, 1).unsqueeze(0)  # (1, Hkv, Tk, D)
    if tq == tk:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=True)
    else:
        q_pos = torch.arange(tk - tq, tk, device=q.device)[:, None]  # (Tq, 1)
        mask = torch.arange(tk, device=q.device)[None, :] <= q_pos  # (Tq, Tk)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale, enable_gqa=True)
    return out[0].transpose(0, 1)  # (Tq, Hq, D)
