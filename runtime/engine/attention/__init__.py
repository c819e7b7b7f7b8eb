"""Attention backends: how a model layer's new q/k/v meet the paged KV cache."""

from runtime.engine.attention.base import AttentionBackend, AttentionFn, AttentionMetadata
from runtime.engine.attention.torch_backend import TorchAttentionBackend

__all__ = ["AttentionBackend", "AttentionFn", "AttentionMetadata", "TorchAttentionBackend", "get_backend"]


def get_backend(name: str) -> AttentionBackend:
    """Backends by name (``torch`` now; ``triton`` comes with the kernels issue)."""
    if name == "torch":
        return TorchAttentionBackend()
    raise ValueError(f"unknown attention backend {name!r}; known: torch")
