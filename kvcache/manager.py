"""The KV-cache manager: per-sequence block tables over a shared pool, with prefix caching.

The scheduler's view, in call order for one request::

    prefix = kv.match(prompt)                         # no side effects
    if kv.can_allocate(seq, len(prompt), prefix):     # no side effects
        kv.allocate(seq, len(prompt), prefix)         # adopts prefix blocks, takes new ones
    ... model computes tokens [prefix.num_tokens, n) ...
    kv.cache_blocks(seq, prompt, n)                   # index the full, computed blocks
    kv.allocate(seq, n + 1)                           # decode growth, no prefix
    kv.free(seq)                                      # tail first, so prefixes outlive tails
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from kvcache.block_pool import BlockPool
from kvcache.errors import (
    InvalidRequestError,
    KVCacheIntegrityError,
    OutOfBlocksError,
    StalePrefixError,
    UnknownSequenceError,
)
from kvcache.eviction import EvictionPolicy, get_eviction_policy
from kvcache.integrity import check_pool_integrity
from kvcache.owners import OwnerRefs
from kvcache.prefix_index import PrefixMatch, hash_block


@dataclass
class _HashCursor:
    """How many leading blocks of a sequence have been hashed, and the hash the next one chains onto."""

    num_blocks: int = 0
    last_hash: int | None = None


class KVCacheManager:
    """Block tables for sequences identified by an opaque hashable ``seq_id``.

    Rules:
    - ``match``, ``num_blocks_needed`` and ``can_allocate`` never change state.
    - ``allocate`` is atomic: it raises ``OutOfBlocksError`` and changes nothing when the pool is short.
    - A prefix is adopted only on a sequence's first ``allocate``; a prefix on a later call is an error.
    - ``match`` leaves at least one token uncomputed, so the engine always computes the last prompt token.
    - Only full blocks whose tokens are all computed enter the prefix index.
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        eviction: EvictionPolicy | str = "lru",
        enable_prefix_caching: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        if block_size <= 0:
            raise InvalidRequestError(f"block_size must be positive, got {block_size}")
        policy = get_eviction_policy(eviction) if isinstance(eviction, str) else eviction
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._clock = clock
        self._pool = BlockPool(num_blocks, policy)
        self._owners = OwnerRefs()
        self._cursors: dict[Hashable, _HashCursor] = {}

    @property
    def pool(self) -> BlockPool:
        """The underlying pool, for inspection and tests; change state only through the manager."""
        return self._pool

    @property
    def num_blocks(self) -> int:
        return self._pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        """Blocks an allocation can take: free queue plus evictable cached blocks."""
        return self._pool.num_free_blocks

    @property
    def num_cached_blocks(self) -> int:
        """Evictable cached blocks: ref 0, hashed, reusable by ``match``."""
        return self._pool.num_cached_blocks

    @property
    def num_used_blocks(self) -> int:
        """Blocks with ``ref_count > 0``."""
        return self._pool.num_used_blocks

    @property
    def usage(self) -> float:
        """Fraction of the pool in use, in ``[0, 1]``."""
        return self.num_used_blocks / self.num_blocks

    @property
    def seq_ids(self) -> tuple[Hashable, ...]:
        """The allocated sequences, in allocation order."""
        return tuple(self._owners)

    def has_seq(self, seq_id: Hashable) -> bool:
        return seq_id in self._owners

    def block_table(self, seq_id: Hashable) -> list[int]:
        """A copy of the table; entry ``i`` holds tokens ``[i * block_size, (i + 1) * block_size)``."""
        self._require(seq_id)
        return self._owners.blocks(seq_id)

    def num_tokens_capacity(self, seq_id: Hashable) -> int:
        self._require(seq_id)
        return self._owners.num_blocks(seq_id) * self.block_size

    def match(self, token_ids: Sequence[int]) -> PrefixMatch:
        """The longest run of cached full blocks in ``token_ids[:-1]``, from the start; no side effects.

        Always empty when prefix caching is disabled.
        """
        if not self.enable_prefix_caching:
            return PrefixMatch()
        block_ids: list[int] = []
        block_hashes: list[int] = []
        parent_hash: int | None = None
        for i in range(max(len(token_ids) - 1, 0) // self.block_size):
            tokens = self._block_tokens(token_ids, i)
            block_hash = hash_block(parent_hash, tokens)
            block_id = self._pool.lookup(block_hash, parent_hash, tokens)
            if block_id is None:
                break
            block_ids.append(block_id)
            block_hashes.append(block_hash)
            parent_hash = block_hash
        return PrefixMatch(tuple(block_ids), len(block_ids) * self.block_size, tuple(block_hashes))

    def num_blocks_needed(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> int:
        """New blocks the pool must supply for ``seq_id`` to hold ``num_tokens`` tokens; no side effects.

        For a sequence not yet allocated, the blocks of ``prefix`` count as already present.
        """
        self._check_request(seq_id, num_tokens, prefix)
        if seq_id in self._owners:
            held = self._owners.num_blocks(seq_id)
        else:
            held = prefix.num_blocks if prefix is not None else 0
        return max(0, math.ceil(num_tokens / self.block_size) - held)

    def can_allocate(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> bool:
        """Whether ``allocate`` with the same arguments would succeed now; no side effects.

        Adopting a prefix block that is evictable takes it out of the free count, so such blocks count too.
        """
        return self._blocks_taken(seq_id, num_tokens, prefix) <= self.num_free_blocks

    def allocate(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> list[int]:
        """Grow ``seq_id``'s table to cover ``num_tokens`` tokens and return a copy of it.

        The first call for a sequence adopts ``prefix`` (one reference per block) before taking new blocks.
        Raises ``OutOfBlocksError`` without changing anything when the pool cannot supply the blocks.
        """
        needed = self.num_blocks_needed(seq_id, num_tokens, prefix)
        taken = self._blocks_taken(seq_id, num_tokens, prefix)
        if taken > self.num_free_blocks:
            adopted = taken - needed
            raise OutOfBlocksError(
                f"sequence {seq_id!r} needs {needed} new blocks (+{adopted} evictable prefix blocks) to hold"
                f" {num_tokens} tokens, but only {self.num_free_blocks} blocks are free",
                seq_id=seq_id,
                needed=taken,
                available=self.num_free_blocks,
            )
        if seq_id not in self._owners:
            self._start(seq_id, prefix if prefix is not None else PrefixMatch())
        self._owners.extend(seq_id, [self._pool.allocate() for _ in range(needed)])
        return self._owners.blocks(seq_id)

    def cache_blocks(self, seq_id: Hashable, token_ids: Sequence[int], num_computed_tokens: int) -> None:
        """Index every full block of ``seq_id`` whose tokens are all computed and that is not indexed yet.

        ``token_ids`` are the sequence's tokens so far; the first ``num_computed_tokens`` have KV in the
        cache. Incremental: blocks hashed by an earlier call (or adopted from a prefix) are skipped. When
        another block already holds a hash, that entry stays and this block remains unhashed.
        """
        self._require(seq_id)
        capacity = self.num_tokens_capacity(seq_id)
        if not 0 <= num_computed_tokens <= min(len(token_ids), capacity):
            raise InvalidRequestError(
                f"sequence {seq_id!r}: num_computed_tokens={num_computed_tokens} must be within"
                f" [0, {min(len(token_ids), capacity)}] ({len(token_ids)} tokens, capacity {capacity})"
            )
        if not self.enable_prefix_caching:
            return
        table = self._owners.blocks(seq_id)
        cursor = self._cursors[seq_id]
        for i in range(cursor.num_blocks, num_computed_tokens // self.block_size):
            tokens = self._block_tokens(token_ids, i)
            block_hash = hash_block(cursor.last_hash, tokens)
            self._pool.cache_block(table[i], block_hash, cursor.last_hash, tokens)
            cursor.num_blocks, cursor.last_hash = i + 1, block_hash

    def free(self, seq_id: Hashable) -> None:
        """Drop every reference ``seq_id`` holds, tail block first, and forget the sequence."""
        self._require(seq_id)
        block_ids = self._owners.release(seq_id)
        del self._cursors[seq_id]
        self._pool.decref_all(reversed(block_ids), self._clock())

    def reset_prefix_cache(self) -> bool:
        """Unhash every evictable cached block and return it to the free queue.

        Blocks in use keep their hashes. Returns ``True`` when the prefix index is empty afterwards.
        """
        return self._pool.reset_prefix_cache()

    def check_integrity(self) -> None:
        """Raise ``KVCacheIntegrityError`` naming the first broken invariant of the pool, index or tables."""
        check_pool_integrity(self._pool, self._owners.ref_counts(), self.block_size)
        if set(self._owners) != set(self._cursors):
            raise KVCacheIntegrityError(
                f"sequences with blocks {sorted(map(repr, self._owners))} differ from sequences with hash"
                f" cursors {sorted(map(repr, self._cursors))}"
            )
        for seq_id, cursor in self._cursors.items():
            if cursor.num_blocks > self._owners.num_blocks(seq_id):
                raise KVCacheIntegrityError(
                    f"sequence {seq_id!r} has {cursor.num_blocks} hashed blocks but only"
                    f" {self._owners.num_blocks(seq_id)} blocks"
                )

    def _start(self, seq_id: Hashable, prefix: PrefixMatch) -> None:
        self._owners.open(seq_id)
        for block_id in prefix.block_ids:
            self._pool.incref(block_id)
        self._owners.extend(seq_id, prefix.block_ids)
        self._cursors[seq_id] = _HashCursor(prefix.num_blocks, prefix.last_hash)

    def _blocks_taken(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None) -> int:
        """New blocks plus adopted prefix blocks that leave the evictable set."""
        needed = self.num_blocks_needed(seq_id, num_tokens, prefix)
        if prefix is None:
            return needed
        evictable = {block_id for block_id in prefix.block_ids if block_id in self._pool.eviction}
        return needed + len(evictable)

    def _check_request(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None) -> None:
        if num_tokens < 0:
            raise InvalidRequestError(f"sequence {seq_id!r}: num_tokens must be >= 0, got {num_tokens}")
        if prefix is None:
            return
        if seq_id in self._owners:
            raise InvalidRequestError(
                f"sequence {seq_id!r} is already allocated; a prefix is adopted only on its first allocate"
            )
        if prefix.num_tokens != prefix.num_blocks * self.block_size:
            raise InvalidRequestError(
                f"sequence {seq_id!r}: prefix of {prefix.num_blocks} blocks claims {prefix.num_tokens} tokens"
                f" with block_size {self.block_size}"
            )
        stale = self._pool.first_stale_block(prefix.block_ids, prefix.block_hashes)
        if stale is not None:
            raise StalePrefixError(
                f"sequence {seq_id!r}: prefix block {stale} no longer holds its matched hash; match again"
            )

    def _require(self, seq_id: Hashable) -> None:
        if seq_id not in self._owners:
            raise UnknownSequenceError(seq_id)

    def _block_tokens(self, token_ids: Sequence[int], index: int) -> tuple[int, ...]:
        return tuple(token_ids[index * self.block_size : (index + 1) * self.block_size])
