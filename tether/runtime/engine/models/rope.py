"""Rotary position embedding, numerically identical to transformers' Llama RoPE (default / linear / llama3).

Inverse frequencies are float32; ``freqs = position.float() * inv_freq``; ``emb = cat(freqs, freqs)``; and
``x_rot = x * cos + rotate_half(x) * sin`` with cos/sin cast to x's dtype, as in ``apply_rotary_pos_emb``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tether.runtime.engine.models.config import RopeConfig


def inv_frequencies(rope: RopeConfig, head_dim: int) -> torch.Tensor:
    """float32 ``[head_dim // 2]`` on CPU, as transformers' ``_compute_*_parameters`` return them."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").to(dtype=torch.float) / head_dim
    inv_freq = 1.0 / (rope.theta**exponents)
    if rope.scaling_type == "linear":
        return inv_freq / rope.factor
    if rope.scaling_type == "llama3":
        return _llama3_scaling(inv_freq, rope)
    return inv_freq


def _llama3_scaling(inv_freq: torch.Tensor, rope: RopeConfig) -> torch.Tensor:
    """Long wavelengths divided by ``factor``, short ones kept, the band between smoothly interpolated."""
    old_context_len = rope.original_max_position_embeddings
    assert old_context_len is not None  # RopeConfig requires it for llama3
    low_freq_wavelen = old_context_len / rope.low_freq_factor
    high_freq_wavelen = old_context_len / rope.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - rope.low_freq_factor) / (
        rope.high_freq_factor - rope.low_freq_factor
    )
    smoothed = (1 - smooth_factor) * inv_freq_llama / rope.factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed, inv_freq_llama)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """``x: [T, H, D]`` (q and k heads together, any stride); ``cos, signed_sin: [T, 1, D]`` in x's dtype from
    ``step_tables``. Equals ``x * cos + rotate_half(x) * sin`` bit for bit: ``rotate_half(x) * sin`` is
    ``cat(-x2 * s, x1 * s)`` and ``roll(x) * signed_sin`` is ``cat(x2 * -s, x1 * s)``, one op instead of four."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


def step_tables(
    cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos, sin: [T, D]`` fp32 (from ``cos_sin``) -> ``cos, signed_sin: [T, 1, D]`` in ``dtype``, where
    ``signed_sin = cat(-sin[:D/2], sin[D/2:])`` (computed once per step, shared by every layer)."""
    half = sin.shape[-1] // 2
    signed = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)
    return cos.to(dtype)[:, None, :], signed.to(dtype)[:, None, :]


class RotaryEmbedding(nn.Module):
    """``forward(positions [T] int64, q [T, Hq, D], k [T, Hkv, D]) -> (q, k)`` rotated.

    cos/sin are tabulated once for positions ``0 .. max_positions-1`` on first use, on the positions' device
    (no host sync per step); each entry equals a fresh ``(position.float() * inv_freq).cos()``. No parameters
    or buffers, so the state dict is unchanged. ``ensure_capacity`` grows the table (not inside a CUDA graph).
    """

    def __init__(self, rope: RopeConfig, head_dim: int, max_positions: int) -> None:
        super().__init__()
        self.rope = rope
        self.head_dim = head_dim
        self.max_positions = max_positions
        self._inv_freq = inv_frequencies(rope, head_dim)  # (D/2,) fp32, CPU
        self._cos: torch.Tensor | None = None  # (N, D/2) fp32
        self._sin: torch.Tensor | None = None  # (N, D/2) fp32

    def ensure_capacity(self, num_positions: int, device: torch.device | str) -> None:
        device = torch.device(device)
        if self._cos is not None and self._cos.device == device and self._cos.shape[0] >= num_positions:
            return
        positions = torch.arange(max(num_positions, self.max_positions), device=device)
        freqs = positions.float()[:, None] * self._inv_freq.to(device)[None, :]  # (N, D/2)
        self._cos, self._sin = freqs.cos(), freqs.sin()

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``positions: [T]`` int64 -> ``cos, sin: [T, D]`` float32 (``emb = cat(freqs, freqs)``)."""
        if self._cos is None or self._cos.device != positions.device:
            self.ensure_capacity(self.max_positions, positions.device)
        assert self._cos is not None and self._sin is not None
        cos, sin = self._cos[positions], self._sin[positions]  # (T, D/2)
        return torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)

    def forward(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cos, signed_sin = step_tables(*self.cos_sin(positions), q.dtype)  # (T, 1, D) each
        return apply_rotary(q, cos, signed_sin), apply_rotary(k, cos, signed_sin)
