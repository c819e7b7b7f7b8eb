"""Attention kernels over the paged KV cache (Triton). ``tether.kernels.torch_ops`` implements the same
contract in torch: the engine's CPU path, and the oracle the kernels are tested against.

The contract (exact; ``torch_ops`` implements the same)::

    k_cache, v_cache: [num_blocks, block_size, Hkv, D]      LSE: float32, natural log

    paged_attention(q [T, Hq, D], k_cache, v_cache, block_table int32 [S, max_blocks],
                    cu_seqlens_q int32 [S+1], kv_lens int32 [S], *, causal=True, sm_scale=None,
                    max_q_len=None)
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

``max_q_len`` (the longest query run, also on ``shared_prefix_attention`` and ``cascade_attention``) saves a
device sync when the caller knows it.

These names are the kernel modules' own functions, re-exported. They always run the Triton kernels: on CUDA
tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before the first use (fp16/fp32 only there).
Each is imported from its module on first access (PEP 562), so ``import tether.kernels`` works where triton
is absent and triton is imported only when a kernel is used; choosing the torch path on a CPU-only machine is
the engine backend's job. Design notes: docs/kernels.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether._lazy import lazy_exports
from tether.kernels.contract import CascadeLevel, KernelInputError, KernelUnavailableError

if TYPE_CHECKING:
    from tether.kernels.cascade import cascade_attention, shared_prefix_attention
    from tether.kernels.merge_kernels import merge_attention_states
    from tether.kernels.paged import paged_attention
    from tether.kernels.store import store_kv

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

_KERNELS = {
    "cascade_attention": "tether.kernels.cascade",
    "merge_attention_states": "tether.kernels.merge_kernels",
    "paged_attention": "tether.kernels.paged",
    "shared_prefix_attention": "tether.kernels.cascade",
    "store_kv": "tether.kernels.store",
}

# A kernel on first access (importing triton); ``ImportError`` where triton is absent.
__getattr__, __dir__ = lazy_exports(__name__, _KERNELS)
