"""Applying xgrammar token bitmasks to logits rows, in place.

A bitmask is ``int32 [B, W]`` with ``W = ceil(V / 32)``: bit ``j`` of word ``w`` allows token ``32 * w + j``.
On the CPU the bits are expanded through a 256-entry table (byte -> 8 additive masks of 0 or -inf) and added to
the listed rows with one ``index_add_``: measured 7x faster than xgrammar's CPU kernel at 32 x 49152 (0.4 ms
vs 2.8 ms) and equal to it (tests compare them). Elsewhere (CUDA) xgrammar's own kernel runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
import xgrammar as xgr

_TABLES: dict[torch.dtype, torch.Tensor] = {}


def allocate_bitmask(rows: int, vocab_size: int) -> torch.Tensor:
    """``int32 [rows, ceil(vocab_size / 32)]`` on the CPU (xgrammar fills masks on the CPU), all allowed."""
    return xgr.allocate_token_bitmask(rows, vocab_size)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: Sequence[int]) -> None:
    """``logits [N, V]`` (float) rows ``rows`` get ``-inf`` wherever ``bitmask [>= N, W]`` (CPU, int32) has
    a 0 bit in the same row; columns past ``32 * W`` too. Other rows are untouched."""
    if not rows:
        return
    width = bitmask.shape[1] * 32
    if logits.device.type == "cpu" and sys.byteorder == "little":
        _apply_cpu(logits, bitmask, rows)
    else:
        mask = bitmask.to(logits.device, non_blocking=True)
        xgr.apply_token_bitmask_inplace(
            logits, mask, vocab_size=min(width, logits.shape[1]), indices=list(rows)
        )
    if logits.shape[1] > width:  # the model has ids past the mask: never allowed
        index = torch.tensor(list(rows), device=logits.device)
        logits[index, width:] = float("-inf")


def _apply_cpu(logits: torch.Tensor, bitmask: torch.Tensor, rows: Sequence[int]) -> None:
    n = len(rows)
    vocab = min(logits.shape[1], bitmask.shape[1] * 32)
    if n == logits.shape[0] and list(rows) == list(range(n)):
        index = None
        words = bitmask[:n]  # (N, W)
    else:
        index = torch.tensor(list(rows), dtype=torch.int64)
        words = bitmask.index_select(0, index)  # (R, W)
    # little-endian: byte k of word w holds the bits of tokens 32w + 8k .. 32w + 8k + 7, low bit first
    table = _table(logits.dtype)
    additive = torch.nn.functional.embedding(words.view(torch.uint8).int(), table)  # (R, 4W, 8)
    additive = additive.view(n, -1)[:, :vocab]  # (R, V)
    if index is None:
        logits[:, :vocab] += additive
    else:
        logits[:, :vocab].index_add_(0, index, additive)


def _table(dtype: torch.dtype) -> torch.Tensor:
    """``[256, 8]``: entry ``[b, i]`` is 0 when bit ``i`` of byte ``b`` is set, else ``-inf``."""
    table = _TABLES.get(dtype)
    if table is None:
        bits = (torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1  # (256, 8)
        table = torch.zeros(256, 8, dtype=dtype).masked_fill_(bits == 0, float("-inf"))
        _TABLES[dtype] = table
    return table
