"""The KV-cache manager: per-sequence block tables over a shared pool, with prefix caching.

The scheduler's view, in call order for one request::

    prefix = kv.match(prompt)                         # no side effects
    if kv.allocate_slots(seq, len(prompt), prefix) is None:   # adopts prefix blocks, takes new ones
        ...                                           # or None, nothing changed: the pool is short
    ... model computes tokens [prefix.num_tokens, n) ...
    kv.cache_blocks(seq, prompt, n)                   # index the full, computed blocks
    kv.allocate_slots(seq, n + 1)                     # decode growth, no prefix
    kv.free(seq)                                      # tail first, so prefixes outlive tails

Once per step, after scheduling and before the forward pass, ``kv.take_pending_copies()`` hands the engine
the block copies between the GPU pool and the CPU tier (see ``tether.kvcache.transfers`` for their order). When a
turn ends in a tool call, ``kv.pin(program, seq, expires_at)`` before ``kv.free(seq)`` keeps the program's
cached blocks; ``park``/``prefetch`` move the pin to the CPU tier and back; ``unpin`` ends it (after the
next turn adopted the blocks through ``match``/``allocate``, or when ``expired_pins`` names it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from tether.kvcache.block_pool import BlockPool
from tether.kvcache.cpu_tier import CpuTier
from tether.kvcache.errors import (
    InvalidKVRequestError,
    KVCacheIntegrityError,
    OutOfBlocksError,
    StalePrefixError,
    UnknownSequenceError,
)
from tether.kvcache.eviction import EvictionPolicy, get_eviction_policy
from tether.kvcache.integrity import check_pool_integrity
from tether.kvcache.owners import OwnerRefs
from tether.kvcache.pins import PinInfo, PinTable
from tether.kvcache.prefix_index import PrefixMatch, hash_block
from tether.kvcache.stats import KVStats
from tether.kvcache.transfers import PendingCopies


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
    - GPU references = sequence references + pin references; CPU references = parked pins + pending
      to_gpu copies. A CPU prefix hit costs one new GPU block per CPU block (counted by ``can_allocate``).
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        eviction: EvictionPolicy | str = "lru",
        enable_prefix_caching: bool = True,
        clock: Callable[[], float] = time.monotonic,
        num_cpu_blocks: int = 0,
        offload_on_evict: bool = False,
        cpu_eviction: EvictionPolicy | str = "lru",
    ):
        if block_size <= 0:
            raise InvalidKVRequestError(f"block_size must be positive, got {block_size}")
        policy = get_eviction_policy(eviction) if isinstance(eviction, str) else eviction
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._clock = clock
        self._pool = BlockPool(num_blocks, policy)
        self._owners = OwnerRefs()
        self._cursors: dict[Hashable, _HashCursor] = {}
        self._counters = KVStats()
        cpu_policy = get_eviction_policy(cpu_eviction) if isinstance(cpu_eviction, str) else cpu_eviction
        self._cpu = CpuTier(num_cpu_blocks, cpu_policy, self._pool, self._counters, clock, offload_on_evict)
        self._pins = PinTable(self._pool, self._cpu, clock)

    @property
    def pool(self) -> BlockPool:
        """The underlying pool, for inspection and tests; change state only through the manager."""
        return self._pool

    @property
    def cpu_tier(self) -> CpuTier:
        """The CPU tier, for inspection and tests; change state only through the manager."""
        return self._cpu

    @property
    def num_blocks(self) -> int:
        return self._pool.num_blocks

    @property
    def num_cpu_blocks(self) -> int:
        return self._cpu.num_blocks

    @property
    def num_free_cpu_blocks(self) -> int:
        """CPU blocks a store can take: free plus evictable (unreferenced, hashed)."""
        return self._cpu.num_free_blocks

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

    @property
    def hash_epoch(self) -> tuple[int, int]:
        """Changes whenever a GPU or CPU block loses its hash (eviction, reset); see ``PrefixMatch.epoch``."""
        return (self._pool.epoch, self._cpu.pool.epoch if self._cpu.pool is not None else 0)

    def match(self, token_ids: Sequence[int], since: PrefixMatch | None = None) -> PrefixMatch:
        """The longest run of cached full blocks in ``token_ids[:-1]``, from the start; no side effects.

        The run goes on in the CPU index where the GPU run stops (``cpu_block_ids``). Always empty when
        prefix caching is disabled. ``since`` is an earlier match of a prefix of ``token_ids`` (the same
        sequence, matched again while it waits): while the hash epoch is unchanged, its blocks still hold
        their hashes, so the match goes on from its end, O(new blocks) instead of O(context).
        """
        if not self.enable_prefix_caching:
            return PrefixMatch()
        epoch = self.hash_epoch
        block_ids: list[int] = []
        cpu_block_ids: list[int] = []
        block_hashes: list[int] = []
        parent_hash: int | None = None
        start = 0
        if since is not None and self._still_valid(since) and self._extends(since, token_ids):
            block_ids, cpu_block_ids = list(since.block_ids), list(since.cpu_block_ids)
            block_hashes, parent_hash, start = list(since.block_hashes), since.last_hash, since.num_blocks
        bs = self.block_size
        gpu_lookup = self._pool.index.lookup
        cpu_pool = self._cpu.pool
        cpu_lookup = cpu_pool.index.lookup if cpu_pool is not None else lambda *key: None
        for i in range(start, max(len(token_ids) - 1, 0) // bs):
            tokens = tuple(token_ids[i * bs : (i + 1) * bs])
            block_hash = hash_block(parent_hash, tokens)
            block_id = None if cpu_block_ids else gpu_lookup(block_hash, parent_hash, tokens)
            if block_id is not None:
                block_ids.append(block_id)
            elif (cpu_id := cpu_lookup(block_hash, parent_hash, tokens)) is not None:
                cpu_block_ids.append(cpu_id)
            else:
                break
            block_hashes.append(block_hash)
            parent_hash = block_hash
        num_tokens = len(block_hashes) * self.block_size
        hashes = tuple(block_hashes)
        return PrefixMatch(tuple(block_ids), num_tokens, hashes, tuple(cpu_block_ids), epoch, frozenset(hashes))

    def _still_valid(self, prefix: PrefixMatch) -> bool:
        """Whether every block of ``prefix`` still holds its hash, from the hashes dropped since its match."""
        if prefix.epoch is None:
            return False
        pools = (self._pool, self._cpu.pool)
        for pool, epoch in zip(pools, prefix.epoch, strict=True):
            if pool is None:
                continue
            if pool.epoch - epoch > 4 * len(prefix.hash_set):
                return False  # scanning that many drops costs more than matching again
            dropped = pool.dropped_since(epoch)
            if dropped is None or not prefix.hash_set.isdisjoint(dropped):
                return False
        return True

    def _extends(self, prefix: PrefixMatch, token_ids: Sequence[int]) -> bool:
        """Whether ``prefix`` fits inside ``token_ids[:-1]`` and its last block holds the same tokens there."""
        n = prefix.num_blocks
        if n == 0:
            return True
        if prefix.num_tokens > max(len(token_ids) - 1, 0):
            return False
        last = self._cpu.block(prefix.cpu_block_ids[-1]) if prefix.cpu_block_ids else None
        last = last if last is not None else self._pool.block(prefix.block_ids[-1])
        return last.token_ids == self._block_tokens(token_ids, n - 1)

    def num_blocks_needed(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> int:
        """New blocks the pool must supply for ``seq_id`` to hold ``num_tokens`` tokens; no side effects.

        For a sequence not yet allocated, the GPU blocks of ``prefix`` count as already present; each of
        its CPU blocks needs a new GPU block.
        """
        if num_tokens < 0 or prefix is not None:
            self._check_request(seq_id, num_tokens, prefix)
        table = self._owners.get(seq_id)
        if table is not None:
            return max(0, math.ceil(num_tokens / self.block_size) - len(table))
        prefix = prefix if prefix is not None else PrefixMatch()
        return max(0, math.ceil(num_tokens / self.block_size) - prefix.num_blocks) + len(prefix.cpu_block_ids)

    def can_allocate(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> bool:
        """Whether ``allocate`` with the same arguments would succeed now; no side effects.

        Adopting a prefix block that is evictable takes it out of the free count, so such blocks count too.
        """
        return self._blocks_taken(seq_id, num_tokens, prefix) <= self.num_free_blocks

    def allocate_slots(
        self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None
    ) -> list[int] | None:
        """``allocate`` in one call for the scheduler: the table, or ``None`` (nothing changed) when the pool
        cannot supply the blocks now."""
        if self._blocks_taken(seq_id, num_tokens, prefix) > self.num_free_blocks:
            return None
        return self.allocate(seq_id, num_tokens, prefix)

    def allocate(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None = None) -> list[int]:
        """Grow ``seq_id``'s table to cover ``num_tokens`` tokens and return a copy of it.

        The first call for a sequence adopts ``prefix`` (one reference per block) before taking new blocks;
        each CPU block of the prefix gets a GPU block indexed under its hash at once and a pending to_gpu
        copy (or the GPU block that holds the hash by now). Raises ``OutOfBlocksError`` without changing
        anything when the pool cannot supply the blocks.
        """
        needed = self.num_blocks_needed(seq_id, num_tokens, prefix)
        taken = needed + self._num_evictable(prefix)
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
            prefix = prefix if prefix is not None else PrefixMatch()
            self._start(seq_id, prefix)
            needed -= len(prefix.cpu_block_ids)
        allocate = self._pool.allocate
        self._owners.extend(seq_id, [allocate() for _ in range(needed)])
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
            raise InvalidKVRequestError(
                f"sequence {seq_id!r}: num_computed_tokens={num_computed_tokens} must be within"
                f" [0, {min(len(token_ids), capacity)}] ({len(token_ids)} tokens, capacity {capacity})"
            )
        if not self.enable_prefix_caching:
            return
        table = self._owners.view(seq_id)
        cursor = self._cursors[seq_id]
        bs, cache_block = self.block_size, self._pool.cache_block
        for i in range(cursor.num_blocks, num_computed_tokens // bs):
            tokens = tuple(token_ids[i * bs : (i + 1) * bs])
            block_hash = hash_block(cursor.last_hash, tokens)
            cache_block(table[i], block_hash, cursor.last_hash, tokens)
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

    @property
    def pins(self) -> dict[Hashable, PinInfo]:
        """``pin_id -> PinInfo`` for every pin, in pin order (a snapshot)."""
        return self._pins.infos()

    @property
    def num_pinned_blocks(self) -> int:
        """GPU blocks with at least one pin reference."""
        return self._pins.num_pinned_blocks()

    def has_pin(self, pin_id: Hashable) -> bool:
        return pin_id in self._pins

    def pin(self, pin_id: Hashable, seq_id: Hashable, expires_at: float) -> tuple[int, ...]:
        """Pin the blocks of ``seq_id`` that are in the prefix index, so they survive ``free(seq_id)``.

        An existing pin of ``pin_id`` is replaced atomically. Returns the pinned block ids.
        """
        table = self.block_table(seq_id)
        return self._pins.pin(pin_id, [b for b in table if self._pool.block(b).is_cached], expires_at)

    def unpin(self, pin_id: Hashable) -> int:
        """End the pin, tail first; returns how many blocks became unreferenced (``UnknownPinError``)."""
        return self._pins.unpin(pin_id)

    def set_pin_expiry(self, pin_id: Hashable, expires_at: float) -> None:
        self._pins.set_expiry(pin_id, expires_at)

    def expired_pins(self, now: float) -> list[Hashable]:
        """Pins with ``expires_at <= now``, earliest first; no side effects (the caller unpins)."""
        return self._pins.expired(now)

    def pin_exclusive_blocks(self, pin_id: Hashable) -> int:
        """GPU blocks whose only reference is this pin: what unpinning would make reclaimable."""
        return self._pins.exclusive_blocks(pin_id)

    def can_park(self, pin_id: Hashable) -> bool:
        """Whether ``park(pin_id)`` would succeed now; no side effects."""
        return self._pins.can_park(pin_id)

    def park(self, pin_id: Hashable) -> int:
        """Move the pin to the CPU tier; returns the to_cpu copies queued (``OutOfCpuBlocksError``)."""
        return self._pins.park(pin_id)

    def can_prefetch(self, pin_id: Hashable) -> bool:
        """Whether ``prefetch(pin_id)`` would bring the pin back now; no side effects."""
        return self._pins.can_prefetch(pin_id)

    def prefetch(self, pin_id: Hashable) -> bool:
        """Bring a parked pin back to GPU blocks; ``False`` (and no change) when the pool is short."""
        return self._pins.prefetch(pin_id)

    def take_pending_copies(self) -> PendingCopies:
        """The copies queued since the last call: run every to_cpu, then every to_gpu, then the forward."""
        return self._cpu.take_pending_copies()

    def stats(self) -> KVStats:
        """Copies, evictions and prefix hits since the manager was built."""
        return self._counters.snapshot()

    def check_integrity(self) -> None:
        """Raise ``KVCacheIntegrityError`` naming the first broken invariant of the pools, indexes, tables,
        pins or pending copies."""
        self._pins.check_integrity()
        ref_counts = self._owners.ref_counts() + self._pins.gpu_ref_counts()
        check_pool_integrity(self._pool, ref_counts, self.block_size)
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
        self._cpu.check_integrity(self._pins.cpu_ref_counts(), self.block_size)

    def _start(self, seq_id: Hashable, prefix: PrefixMatch) -> None:
        self._owners.open(seq_id)
        for block_id in prefix.block_ids:
            self._pool.incref(block_id)
        self._owners.extend(seq_id, prefix.block_ids)
        if prefix.cpu_block_ids:
            cpu_block_ids = prefix.cpu_block_ids
            self._cpu.incref_all(cpu_block_ids)
            keys = [self._cpu.key(cpu_block_id) for cpu_block_id in cpu_block_ids]
            self._owners.extend(seq_id, self._cpu.fetch(cpu_block_ids, keys))
            self._cpu.decref_all(cpu_block_ids[::-1])
        self._counters.gpu_hit_blocks += len(prefix.block_ids)
        self._counters.cpu_hit_blocks += len(prefix.cpu_block_ids)
        self._cursors[seq_id] = _HashCursor(prefix.num_blocks, prefix.last_hash)

    def _blocks_taken(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None) -> int:
        """New blocks plus adopted prefix blocks that leave the evictable set."""
        return self.num_blocks_needed(seq_id, num_tokens, prefix) + self._num_evictable(prefix)

    def _num_evictable(self, prefix: PrefixMatch | None) -> int:
        """Distinct GPU blocks of ``prefix`` that are evictable now (adopting them takes them out of the free
        count). The caller checked that the prefix is not stale, so each block holds its hash, and a hashed
        block is evictable exactly when nothing references it (``check_pool_integrity``)."""
        if prefix is None or not prefix.block_ids:
            return 0
        blocks = self._pool.blocks
        return len({block_id for block_id in prefix.block_ids if blocks[block_id].ref_count == 0})

    def _check_request(self, seq_id: Hashable, num_tokens: int, prefix: PrefixMatch | None) -> None:
        if num_tokens < 0:
            raise InvalidKVRequestError(f"sequence {seq_id!r}: num_tokens must be >= 0, got {num_tokens}")
        if prefix is None:
            return
        if seq_id in self._owners:
            raise InvalidKVRequestError(
                f"sequence {seq_id!r} is already allocated; a prefix is adopted only on its first allocate"
            )
        if prefix.num_tokens != prefix.num_blocks * self.block_size:
            raise InvalidKVRequestError(
                f"sequence {seq_id!r}: prefix of {prefix.num_blocks} blocks claims {prefix.num_tokens} tokens"
                f" with block_size {self.block_size}"
            )
        if self._still_valid(prefix):
            return  # no matched block lost its hash since the match
        stale = self._pool.first_stale_block(prefix.block_ids, prefix.gpu_block_hashes)
        if stale is not None:
            raise StalePrefixError(
                f"sequence {seq_id!r}: prefix block {stale} no longer holds its matched hash; match again"
            )
        stale = self._cpu.first_stale_block(prefix.cpu_block_ids, prefix.cpu_block_hashes)
        if stale is not None:
            raise StalePrefixError(
                f"sequence {seq_id!r}: prefix CPU block {stale} no longer holds its matched hash; match again"
            )

    def _require(self, seq_id: Hashable) -> None:
        if seq_id not in self._owners:
            raise UnknownSequenceError(seq_id)

    def _block_tokens(self, token_ids: Sequence[int], index: int) -> tuple[int, ...]:
        return tuple(token_ids[index * self.block_size : (index + 1) * self.block_size])
