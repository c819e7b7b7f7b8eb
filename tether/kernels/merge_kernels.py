"""Merging partial attentions over disjoint key sets by log-sum-exp (two states, or N key splits).

For states ``(o_i, lse_i)``::

    m = max_i lse_i           (read as 0 when every lse_i is -inf)
    w_i = exp(lse_i - m)      (0 for an empty state)
    o = sum_i w_i o_i / sum_i w_i,   lse = m + log(sum_i w_i)      every lse_i = -inf: o = 0, lse = -inf
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from tether.kernels.contract import check_merge_args
from tether.kernels.runtime import ensure_runnable
from tether.kernels.tiles import block_d, next_power_of_2


@triton.jit
def _merge_two_kernel(
    oa_ptr,
    la_ptr,
    ob_ptr,
    lb_ptr,
    o_ptr,
    lse_ptr,
    num_rows,
    num_heads,
    head_dim,
    s_oat,
    s_oah,
    s_obt,
    s_obh,
    s_ot,
    s_oh,
    s_lat,
    s_lah,
    s_lbt,
    s_lbh,
    s_lt,
    s_lh,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,) flat (token, head) rows
    r_ok = r < num_rows
    t = (r // num_heads).to(tl.int64)
    h = r % num_heads
    d = tl.arange(0, BLOCK_D)
    mask = r_ok[:, None] & (d < head_dim)[None, :]
    la = tl.load(la_ptr + t * s_lat + h * s_lah, mask=r_ok, other=float("-inf"))
    lb = tl.load(lb_ptr + t * s_lbt + h * s_lbh, mask=r_ok, other=float("-inf"))
    m = tl.maximum(la, lb)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    wa = tl.exp(la - m_safe)
    wb = tl.exp(lb - m_safe)
    total = wa + wb
    seen = total > 0.0
    inv = tl.where(seen, 1.0 / tl.where(seen, total, 1.0), 0.0)
    oa = tl.load(oa_ptr + (t * s_oat + h * s_oah)[:, None] + d[None, :], mask=mask, other=0.0).to(tl.float32)
    ob = tl.load(ob_ptr + (t * s_obt + h * s_obh)[:, None] + d[None, :], mask=mask, other=0.0).to(tl.float32)
    o = (oa * (wa * inv)[:, None] + ob * (wb * inv)[:, None]).to(o_ptr.dtype.element_ty)
    tl.store(o_ptr + (t * s_ot + h * s_oh)[:, None] + d[None, :], o, mask=mask)
    lse = tl.where(seen, m_safe + tl.log(tl.where(seen, total, 1.0)), float("-inf"))
    tl.store(lse_ptr + t * s_lt + h * s_lh, lse, mask=r_ok)


@triton.jit
def _reduce_splits_kernel(
    op_ptr,
    lp_ptr,
    o_ptr,
    lse_ptr,
    num_splits,
    num_heads,
    head_dim,
    s_ops,
    s_opt,
    s_oph,
    s_lps,
    s_lpt,
    s_lph,
    s_ot,
    s_oh,
    s_lt,
    s_lh,
    BLOCK_S: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    t = (tl.program_id(0) // num_heads).to(tl.int64)
    h = tl.program_id(0) % num_heads
    sp = tl.arange(0, BLOCK_S)
    sp_ok = sp < num_splits
    d = tl.arange(0, BLOCK_D)
    lse_i = tl.load(
        lp_ptr + sp * s_lps + t * s_lpt + h * s_lph, mask=sp_ok, other=float("-inf")
    )  # (BLOCK_S,)
    m = tl.max(lse_i, 0)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp(lse_i - m_safe)  # (BLOCK_S,)
    total = tl.sum(w, 0)
    seen = total > 0.0
    inv = tl.where(seen, 1.0 / tl.where(seen, total, 1.0), 0.0)
    o_i = tl.load(
        op_ptr + (sp * s_ops + t * s_opt + h * s_oph)[:, None] + d[None, :],
        mask=sp_ok[:, None] & (d < head_dim)[None, :],
        other=0.0,
    )  # (BLOCK_S, BLOCK_D) fp32
    o = tl.sum(o_i * (w * inv)[:, None], 0)  # (BLOCK_D,)
    tl.store(o_ptr + t * s_ot + h * s_oh + d, o.to(o_ptr.dtype.element_ty), mask=d < head_dim)
    tl.store(
        lse_ptr + t * s_lt + h * s_lh,
        tl.where(seen, m_safe + tl.log(tl.where(seen, total, 1.0)), float("-inf")),
    )


def merge_attention_states(
    o_a: torch.Tensor, lse_a: torch.Tensor, o_b: torch.Tensor, lse_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact combination of two partial attentions (``o: [T, H, D]``, ``lse: [T, H]`` fp32) over disjoint
    key sets; ``-inf`` on either side contributes nothing, on both gives ``o = 0, lse = -inf``. ``o`` keeps
    ``o_a``'s dtype."""
    check_merge_args(o_a, lse_a, o_b, lse_b)
    ensure_runnable(o_a.dtype, o_a, lse_a, o_b, lse_b)
    return merge_two(o_a, lse_a, o_b, lse_b, o_a.dtype)


def merge_two(
    o_a: torch.Tensor, lse_a: torch.Tensor, o_b: torch.Tensor, lse_b: torch.Tensor, out_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``o_a, o_b: [T, H, D]`` (last dim contiguous), ``lse_a, lse_b: [T, H]`` fp32 -> ``(o [T, H, D], lse)``."""
    t, h, d = o_a.shape
    o_a, o_b = _last_dim_contiguous(o_a), _last_dim_contiguous(o_b)
    o = torch.empty((t, h, d), dtype=out_dtype, device=o_a.device)
    lse = torch.empty((t, h), dtype=torch.float32, device=o_a.device)
    if t * h == 0:
        return o, lse
    bd = block_d(d)
    block_r = max(16, min(128, 4096 // bd))
    _merge_two_kernel[(triton.cdiv(t * h, block_r),)](
        o_a, lse_a, o_b, lse_b, o, lse, t * h, h, d,
        o_a.stride(0), o_a.stride(1), o_b.stride(0), o_b.stride(1), o.stride(0), o.stride(1),
        lse_a.stride(0), lse_a.stride(1), lse_b.stride(0), lse_b.stride(1), lse.stride(0), lse.stride(1),
        BLOCK_R=block_r, BLOCK_D=bd,
    )  # fmt: skip
    return o, lse


def reduce_splits(o_part: torch.Tensor, lse_part: torch.Tensor, o: torch.Tensor, lse: torch.Tensor) -> None:
    """``o_part: [N, T, H, D]`` fp32, ``lse_part: [N, T, H]`` -> writes ``o: [T, H, D]``, ``lse: [T, H]``."""
    n, t, h, d = o_part.shape
    if t * h == 0:
        return
    _reduce_splits_kernel[(t * h,)](
        o_part, lse_part, o, lse, n, h, d,
        o_part.stride(0), o_part.stride(1), o_part.stride(2),
        lse_part.stride(0), lse_part.stride(1), lse_part.stride(2),
        o.stride(0), o.stride(1), lse.stride(0), lse.stride(1),
        BLOCK_S=max(2, next_power_of_2(n)), BLOCK_D=block_d(d),
    )  # fmt: skip


def _last_dim_contiguous(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()
