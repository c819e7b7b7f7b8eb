"""The block: one page of KV memory, its reference count and, once full and computed, its prefix hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class BlockKey(NamedTuple):
    """What a prefix index verifies a hit against: a block's chained hash, its parent's hash, its tokens."""

    block_hash: int
    parent_hash: int | None
    token_ids: tuple[int, ...]


@dataclass
class Block:
    """Internal, mutable state of one physical KV block; never handed across the package boundary.

    ``block_hash``, ``parent_hash`` and ``token_ids`` are set together when a full, computed block is
    registered in the prefix index, and cleared together when it is evicted or the cache is reset.
    ``token_ids`` and ``parent_hash`` let a lookup verify a hit instead of trusting the hash alone.
    Change them only through ``set_hash``/``clear_hash``, which also keep ``key`` (built once per hash).
    """

    block_id: int
    ref_count: int = 0
    block_hash: int | None = None
    parent_hash: int | None = None
    token_ids: tuple[int, ...] = ()
    _key: BlockKey | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_cached(self) -> bool:
        return self.block_hash is not None

    @property
    def key(self) -> BlockKey | None:
        """The block's index key, or ``None`` while it is unhashed."""
        if self.block_hash is None:
            return None
        if self._key is None:  # the hash fields were set directly
            self._key = BlockKey(self.block_hash, self.parent_hash, self.token_ids)
        return self._key

    def set_hash(self, block_hash: int, parent_hash: int | None, token_ids: tuple[int, ...]) -> None:
        self.block_hash = block_hash
        self.parent_hash = parent_hash
        self.token_ids = token_ids
        self._key = None  # built on first use

    def clear_hash(self) -> None:
        self.block_hash = None
        self.parent_hash = None
        self.token_ids = ()
        self._key = None
