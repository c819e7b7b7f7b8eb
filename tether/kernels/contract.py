"""Typed errors and argument checks shared by the Triton kernels and the torch versions (no triton import).

Shapes (the contract in ``tether/kernels/__init__.py``)::

    q            [T, Hq, D]                          float16 | bfloat16 | float32
    k/v_cache    [num_blocks, block_size, Hkv, D]    same dtype as q, Hq % Hkv == 0
    block_table  int32 [S, max_blocks]
    cu_seqlens_q int32 [S+1]
    kv_lens      int32 [S]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class KernelInputError(ValueError):
    """An argument of a kernel call has the wrong shape, dtype or device; the message names it."""


class KernelUnavailableError(RuntimeError):
    """The Triton kernels cannot run here (no CUDA tensors and no ``TRITON_INTERPRET=1``, or no triton)."""


@dataclass(frozen=True)
class CascadeLevel:
    """One level of a prefix tree for ``cascade_attention``: ``G`` groups of consecutive sequences, group ``g``
    owning the queries ``cu_seqlens_q[g] .. cu_seqlens_q[g+1]-1`` of the flat batch and sharing the KV of the
    pages ``block_table[g, :kv_lens[g] // block_size]``.

    block_table:  int32 [G, max_blocks]
    cu_seqlens_q: int32 [G+1]   boundaries on sequence boundaries; the groups cover all ``T`` queries
    kv_lens:      int32 [G]     a multiple of block_size (0: the group shares nothing at this level)
    max_q_len:    the most queries of one group, when the caller knows it (saves a device sync)

    Levels are ordered root first: the KV of a sequence is level 0's pages, then level 1's, ..., then its own
    ``block_table`` row. Every query sees all the KV of its levels (the shared prefixes precede every query).
    """

    block_table: torch.Tensor
    cu_seqlens_q: torch.Tensor
    kv_lens: torch.Tensor
    max_q_len: int | None = None


def check_attention_args(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_lens: torch.Tensor,
) -> None:
    """Shape/dtype/device checks that need no device sync; raises ``KernelInputError`` naming the argument."""
    if q.dim() != 3:
        raise KernelInputError(f"q must be [T, Hq, D], got shape {tuple(q.shape)}")
    if q.dtype not in SUPPORTED_DTYPES:
        raise KernelInputError(f"q dtype {q.dtype} is not one of {SUPPORTED_DTYPES}")
    for name, cache in (("k_cache", k_cache), ("v_cache", v_cache)):
        if cache.dim() != 4:
            raise KernelInputError(
                f"{name} must be [num_blocks, block_size, Hkv, D], got {tuple(cache.shape)}"
            )
        if cache.dtype != q.dtype:
            raise KernelInputError(f"{name} dtype {cache.dtype} differs from q dtype {q.dtype}")
        if cache.shape[-1] != q.shape[-1]:
            raise KernelInputError(f"{name} head_dim {cache.shape[-1]} differs from q head_dim {q.shape[-1]}")
        if cache.device != q.device:
            raise KernelInputError(f"{name} is on {cache.device}, q on {q.device}")
    if k_cache.shape != v_cache.shape:
        raise KernelInputError(f"k_cache {tuple(k_cache.shape)} and v_cache {tuple(v_cache.shape)} differ")
    if q.shape[1] % k_cache.shape[2] != 0:
        raise KernelInputError(f"Hq={q.shape[1]} is not a multiple of Hkv={k_cache.shape[2]}")
    check_index_args(block_table, cu_seqlens_q, kv_lens, q.device)


def check_index_args(
    block_table: torch.Tensor, cu_seqlens_q: torch.Tensor, kv_lens: torch.Tensor, device: torch.device
) -> None:
    num_seqs = kv_lens.shape[0] if kv_lens.dim() == 1 else -1
    for name, t, dims in (
        ("block_table", block_table, 2),
        ("cu_seqlens_q", cu_seqlens_q, 1),
        ("kv_lens", kv_lens, 1),
    ):
        if t.dtype != torch.int32:
            raise KernelInputError(f"{name} must be int32, got {t.dtype}")
        if t.dim() != dims:
            raise KernelInputError(f"{name} must have {dims} dimension(s), got shape {tuple(t.shape)}")
        if t.device != device:
            raise KernelInputError(f"{name} is on {t.device}, q on {device}")
    if block_table.shape[0] != num_seqs or cu_seqlens_q.shape[0] != num_seqs + 1:
        raise KernelInputError(
            f"block_table has {block_table.shape[0]} rows, cu_seqlens_q {cu_seqlens_q.shape[0]} entries and "
            f"kv_lens {num_seqs}: expected S, S+1 and S"
        )


def check_merge_args(o_a: torch.Tensor, lse_a: torch.Tensor, o_b: torch.Tensor, lse_b: torch.Tensor) -> None:
    if o_a.dim() != 3 or o_a.shape != o_b.shape:
        raise KernelInputError(f"o_a {tuple(o_a.shape)} and o_b {tuple(o_b.shape)} must both be [T, H, D]")
    for name, lse in (("lse_a", lse_a), ("lse_b", lse_b)):
        if lse.shape != o_a.shape[:2] or lse.dtype != torch.float32:
            raise KernelInputError(
                f"{name} must be float32 {tuple(o_a.shape[:2])}, got {lse.dtype} {tuple(lse.shape)}"
            )
