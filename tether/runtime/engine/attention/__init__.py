"""Attention backends: how a model layer's new q/k/v meet the paged KV cache."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

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


def resolve_backend_name(
    name: str, device: torch.device, self_check: Callable[[torch.device], bool] | None = None
) -> str:
    """``auto``: ``triton`` on CUDA when triton is installed and its kernels have passed the self-check on this
    device (``self_check.triton_self_check_passed``: run once, cached per device), ``torch`` otherwise (the CPU
    default; a failed check logs a warning). An explicit name always wins and is never checked."""
    if name != "auto":
        return name
    if device.type != "cuda" or importlib.util.find_spec("triton") is None:
        return "torch"
    if self_check is None:
        from tether.runtime.engine.attention.self_check import triton_self_check_passed

        self_check = triton_self_check_passed
    return "triton" if self_check(device) else "torch"


def get_backend(name: str) -> AttentionBackend:
    """Backends by name: ``torch`` (any device) or ``triton`` (CUDA, or CPU under ``TRITON_INTERPRET=1``)."""
    if name == "torch":
        return TorchAttentionBackend()
    if name == "triton":
        from tether.runtime.engine.attention.triton_backend import TritonAttentionBackend

        return TritonAttentionBackend()
    raise ValueError(f"unknown attention backend {name!r}; known: auto, {', '.join(BACKENDS)}")
