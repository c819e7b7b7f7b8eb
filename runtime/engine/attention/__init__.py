"""Attention backends: how a model layer's new q/k/v meet the paged KV cache."""

from __future__ import annotations

import importlib.util

import torch
from tether.runtime.engine.attention.base import AttentionBackend, AttentionFn, AttentionMetadata
from tether.runtime.engine.attention.torch_backend import TorchAttentionBackend

__all__ = [
    "AttentionBackend",
    "AttentionFn",
    "AttentionMetadata",
    "TorchAttentionBackend",
    "get_backend",
    "resolve_backend_name",
]

BACKENDS = ("torch", "triton")


def resolve_backend_name(name: str, device: torch.device) -> str:
    """``auto``: ``triton`` on CUDA when triton is installed, ``torch`` otherwise (the CPU default). An
    explicit name always wins."""
    if name != "auto":
        return name
    if device.type == "cuda" and importlib.util.find_spec("triton") is not None:
        return "triton"
    return "torch"


def get_backend(name: str) -> AttentionBackend:
    """Backends by name: ``torch`` (any device) or ``triton`` (CUDA, or CPU under ``TRITON_INTERPRET=1``)."""
    if name == "torch":
        return TorchAttentionBackend()
    if name == "triton":
        from tether.runtime.engine.attention.triton_backend import TritonAttentionBackend

        return TritonAttentionBackend()
    raise ValueError(f"unknown attention backend {name!r}; known: auto, {', '.join(BACKENDS)}")
