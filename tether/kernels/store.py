"""``store_kv``: write the new tokens' K and V into their cache pages (a program per BLOCK_T tokens x kv head).

Slot ``s`` is page ``s // block_size``, offset ``s % block_size``; a negative slot skips the token.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from tether.kernels.contract import KernelInputError
from tether.kernels.runtime import ensure_runnable, interpreted
from tether.kernels.tiles import block_d


@triton.jit
def _store_kv_kernel(
    k_ptr,
    v_ptr,
    k_cache_ptr,
    v_cache_ptr,
    slot_ptr,
    num_tokens,
    head_dim,
    s_kt,
    s_kh,
    s_kd,
    s_vt,
    s_vh,
    s_vd,
    s_cb,
    s_cp,
    s_ch,
    s_cd,
    PAGE_SIZE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    h = tl.program_id(1).to(tl.int64)
    t_ok = t < num_tokens
    slot = tl.load(slot_ptr + t, mask=t_ok, other=-1).to(tl.int64)
    keep = t_ok & (slot >= 0)
    slot = tl.where(keep, slot, 0)
    d = tl.arange(0, BLOCK_D)
    mask = keep[:, None] & (d < head_dim)[None, :]
    k = tl.load(k_ptr + (t * s_kt + h * s_kh)[:, None] + (d * s_kd)[None, :], mask=mask)
    v = tl.load(v_ptr + (t * s_vt + h * s_vh)[:, None] + (d * s_vd)[None, :], mask=mask)
    dst = ((slot // PAGE_SIZE) * s_cb + (slot % PAGE_SIZE) * s_cp + h * s_ch)[:, None] + (d * s_cd)[None, :]
    tl.store(k_cache_ptr + dst, k.to(k_cache_ptr.dtype.element_ty), mask=mask)
    tl.store(v_cache_ptr + dst, v.to(v_cache_ptr.dtype.element_ty), mask=mask)


def store_kv(
    k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot_mapping: torch.Tensor
) -> None:
    """``k, v: [T, Hkv, D]`` into ``k_cache, v_cache: [num_blocks, block_size, Hkv, D]`` at ``slot_mapping: [T]``
    (int32 or int64; negative skips)."""
    if k.shape != v.shape or k.dim() != 3 or k.shape[1:] != k_cache.shape[2:]:
        raise KernelInputError(
            f"k {tuple(k.shape)} / v {tuple(v.shape)} do not fit cache {tuple(k_cache.shape)}"
        )
    if k_cache.shape != v_cache.shape or k_cache.stride() != v_cache.stride():
        raise KernelInputError(f"k_cache {tuple(k_cache.shape)} and v_cache {tuple(v_cache.shape)} differ")
    if slot_mapping.shape != (k.shape[0],) or slot_mapping.dtype not in (torch.int32, torch.int64):
        raise KernelInputError(f"slot_mapping must be int32/int64 [{k.shape[0]}], got {slot_mapping.dtype} "
                               f"{tuple(slot_mapping.shape)}")  # fmt: skip
    ensure_runnable(k_cache.dtype, k, v, k_cache, v_cache, slot_mapping)
    num_tokens, hkv, d = k.shape
    if num_tokens == 0:
        return
    bd = block_d(d)
    block_t = 16 if interpreted() else max(1, min(64, 2048 // bd))
    _store_kv_kernel[(triton.cdiv(num_tokens, block_t), hkv)](
        k, v, k_cache, v_cache, slot_mapping, num_tokens, d,
        k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), k_cache.stride(3),
        PAGE_SIZE=k_cache.shape[1], BLOCK_T=block_t, BLOCK_D=bd,
    )  # fmt: skip
