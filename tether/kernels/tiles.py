"""Tile shapes and the split-KV rule (pure Python: no triton, no device sync).

GPU rules that every config obeys (asserted): all tiles are powers of two and at least 16, so that both
``tl.dot`` products (``q @ k^T`` with K = BLOCK_D, ``p @ v`` with K = BLOCK_N) meet the 16-bit tensor-core
minimum of K >= 16 and M, N >= 16. Head dims that are not a power of two are padded (masked) to BLOCK_D.

Query tiles pack the GQA group into the M dimension: row ``r`` of a tile is query token ``r // G`` and query
head ``kv_head * G + r % G``, so the KV of one kv head is read once for all of its query heads::

    rows   0   1 ... G-1 | G  G+1 ... 2G-1 | ...          (BLOCK_M rows, BLOCK_M // G tokens)
    token  t0  t0 .. t0  | t1 t1  ...  t1  | ...
    head   h0  h1 .. hG-1| h0 h1  ...  hG-1| ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The interpreter runs one program at a time in numpy: large tiles and few programs keep the tests fast.
INTERPRETER_SMS = 4
GPU_MIN_KEYS_PER_SPLIT = 256
MAX_SPLITS = 64


def next_power_of_2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class TileConfig:
    block_m: int  # query rows per program (tokens x GQA group)
    block_n: int  # keys per inner iteration
    num_warps: int = 4
    num_stages: int = 2

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n"):
            value = getattr(self, name)
            assert value >= 16 and value & (value - 1) == 0, f"{name}={value} must be a power of two >= 16"

    def tokens_per_tile(self, group: int) -> int:
        assert group <= self.block_m, f"GQA group {group} exceeds BLOCK_M={self.block_m}"
        return self.block_m // group


def block_d(head_dim: int) -> int:
    """The padded head dim: a power of two >= 16 (the K of ``q @ k^T``)."""
    return max(16, next_power_of_2(head_dim))


def attention_tiles(
    head_dim: int, group: int, elem_bytes: int, decode: bool, interpreted: bool
) -> TileConfig:
    """16-bit prefill/extend: 128 query rows x 64 keys, 8 warps (FlashAttention-2's Triton shapes; 64 x 32 for
    a 256-wide head). 16-bit decode: the GQA group padded to 16 rows x 64 keys. fp32 (tests, debugging; dots in
    tf32x3): 16 rows x 32 keys. Each was compiled for sm_90 without register spills (see docs/kernels.md)."""
    min_m = max(16, next_power_of_2(group))
    if interpreted:
        return TileConfig(block_m=max(min_m, 16 if decode else 64), block_n=32 if decode else 64)
    d = block_d(head_dim)
    if elem_bytes >= 4:
        return TileConfig(
            block_m=min_m, block_n=32 if d <= 128 else 16, num_warps=4, num_stages=2 if d <= 128 else 1
        )
    if decode:
        return TileConfig(
            block_m=min_m, block_n=64 if d <= 128 else 32, num_warps=8 if d == 128 else 4, num_stages=3
        )
    return TileConfig(
        block_m=max(min_m, 128 if d <= 128 else 64),
        block_n=64 if d <= 128 else 32,
        num_warps=8,
        num_stages=3 if d <= 128 else 2,
    )


def choose_num_splits(programs: int, max_kv_len: int, num_sms: int, min_keys_per_split: int) -> int:
    """Split the keys of each (query tile, kv head) when ``programs`` cannot fill ``num_sms`` (aim for two
    waves), keeping at least ``min_keys_per_split`` keys per split and at most ``MAX_SPLITS`` splits."""
    if programs >= num_sms or max_kv_len <= min_keys_per_split:
        return 1
    want = math.ceil(2 * num_sms / programs)
    by_len = math.ceil(max_kv_len / min_keys_per_split)
    return max(1, min(want, by_len, MAX_SPLITS))


def split_size(max_kv_len: int, num_splits: int, block_n: int) -> int:
    """Keys per split: a multiple of BLOCK_N covering ``max_kv_len`` in ``num_splits`` parts."""
    per = math.ceil(max(max_kv_len, 1) / num_splits)
    return math.ceil(per / block_n) * block_n
