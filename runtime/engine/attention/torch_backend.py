"""The reference backend: torch on any device, through ``kernels.reference``."""

from __future__ import annotations

import torch

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
        o, _ = reference.paged_attention(
            q, k_cache, v_cache, meta.block_table, meta.cu_seqlens_q, meta.kv_lens, causal=True
        )
        return o
