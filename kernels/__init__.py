"""Attention kernels over the paged KV cache (Triton), with torch reference versions in ``tether.kernels.reference``.

The contract (exact; the reference implements the same)::

    k_cache, v_cache: [num_blocks, block_size, Hkv, D]      LSE: float32, natural log

    paged_attention(q [T, Hq, D], k_cache, v_cache, block_table int32 [S, max_blocks],
                    cu_seqlens_q int32 [S+1], kv_lens int32 [S], *, causal=True, sm_scale=None)
        -> (o [T, Hq, D] in q's dtype, lse [T, Hq] fp32)
        kv_lens: the KV tokens of each sequence in the cache, the new tokens whose queries are in q included.
        causal: query i of sequence s sits at position kv_lens[s] - q_len + i and sees keys 0..position;
        otherwise it sees all kv_lens[s] keys. A query that sees no key: o = 0, lse = -inf (never NaN).
    merge_attention_states(o_a, lse_a, o_b, lse_b) -> (o, lse)      two partials over disjoint key sets
    shared_prefix_attention(q, k_cache, v_cache, prefix_blocks int32 [n], prefix_len, block_table,
                            cu_seqlens_q, kv_lens, *, causal=True, sm_scale=None) -> (o, lse)
        == paged_attention over (prefix_blocks + own blocks, prefix_len + kv_lens); prefix read once.
    cascade_attention(q, k_cache, v_cache, levels: [CascadeLevel], block_table, cu_seqlens_q, kv_lens, ...)
        the tree generalisation: several levels of shared prefixes, merged in turn.
    store_kv(k, v, k_cache, v_cache, slot_mapping)                   writes new tokens into their pages

These top-level functions always run the Triton kernels: on CUDA tensors, or on CPU tensors when
``TRITON_INTERPRET=1`` was set before the first call (fp16/fp32 only there). Triton is imported at the first
call, so ``import tether.kernels`` works where triton is absent; choosing the torch path on a CPU-only machine is the
engine backend's job. Design notes: docs/kernels.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.kernels.contract import CascadeLevel, KernelInputError, KernelUnavailableError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CascadeLevel",
    "KernelInputError",
    "KernelUnavailableError",
    "cascade_attention",
    "merge_attention_states",
    "paged_attention",
    "shared_prefix_attention",
    "store_kv",
]


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
    """Prefill, extend and decode over the paged cache (split-KV decode when the batch is small)."""
    from tether.kernels.paged import paged_attention as impl

    return impl(q, k_cache, v_cache, block_table, cu_seqlens_q, kv_lens, causal=causal, sm_scale=sm_scale)


def merge_attention_states(
    o_a: torch.Tensor, lse_a: torch.Tensor, o_b: torch.Tensor, lse_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact combination of two partial attentions (``o: [T, H, D]``, ``lse: [T, H]`` fp32) over disjoint
    key sets; ``-inf`` on either side contributes nothing, on both gives ``o = 0, lse = -inf``. ``o`` keeps
    ``o_a``'s dtype."""
    from tether.kernels.contract import check_merge_args
    from tether.kernels.merge_kernels import merge_two
    from tether.kernels.runtime import ensure_runnable

    check_merge_args(o_a, lse_a, o_b, lse_b)
    ensure_runnable(o_a.dtype, o_a, lse_a, o_b, lse_b)
    return merge_two(o_a, lse_a, o_b, lse_b, o_a.dtype)


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
    """Every sequence's KV starts with the same ``prefix_len`` tokens in ``prefix_blocks``; ``block_table`` and
    ``kv_lens`` describe each one's own KV after it."""
    from tether.kernels.cascade import shared_prefix_attention as impl

    return impl(
        q, k_cache, v_cache, prefix_blocks, prefix_len, block_table, cu_seqlens_q, kv_lens,
        causal=causal, sm_scale=sm_scale,
    )  # fmt: skip


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
    """A tree of shared prefixes (see ``CascadeLevel``), each level read once per group, merged root first."""
    from tether.kernels.cascade import cascade_attention as impl

    return impl(
        q, k_cache, v_cache, levels, block_table, cu_seqlens_q, kv_lens, causal=causal, sm_scale=sm_scale
    )


def store_kv(
    k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot_mapping: torch.Tensor
) -> None:
    """Write ``k, v: [T, Hkv, D]`` at ``slot_mapping: [T]`` (block * block_size + offset; negative skips)."""
    from tether.kernels.store import store_kv as impl

    impl(k, v, k_cache, v_cache, slot_mapping)
