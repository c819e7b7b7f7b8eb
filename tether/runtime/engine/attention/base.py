"""The contract between a model's attention layers, the KV cache and an attention backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class AttentionFn(Protocol):
    """What a model layer calls: ``attn(layer, q, k, v) -> o``.

    ``q: [T, Hq, D]`` and ``k, v: [T, Hkv, D]`` are the new tokens of the step (after RoPE), flattened over all
    sequences. The callee stores ``k, v`` into the layer's cache and returns ``o: [T, Hq, D]`` in q's dtype.
    """

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class AttentionMetadata:
    """Flat batch description for one forward step (all tensors on the model's device).

    slot_mapping: int64 [T]      cache slot of each new token (block * block_size + offset)
    block_table:  int32 [S, max_blocks]
    cu_seqlens_q: int32 [S+1]    new-token offsets per sequence
    kv_lens:      int32 [S]      tokens in the cache per sequence after this step's tokens are stored
    """

    slot_mapping: torch.Tensor
    block_table: torch.Tensor
    cu_seqlens_q: torch.Tensor
    kv_lens: torch.Tensor
    max_q_len: int


class AttentionBackend(Protocol):
    """Stores new KV into the paged cache and attends over each sequence's whole cached context."""

    name: str

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
    ) -> torch.Tensor: ...
