"""The block pool: every physical block, in exactly one of three places.

    free queue  ref 0, no hash   FIFO, handed out first (initially 0, 1, 2, ...)
    evictable   ref 0, hashed    held by the EvictionPolicy, reusable on a prefix hit, evicted when needed
    in use      ref > 0          referenced by one or more owners (sequences, later pins)

The pool knows reference counts, not owners; the manager keeps the owners and checks both agree.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from tether.kvcache.block import Block
from tether.kvcache.errors import BlockStateError, InvalidKVRequestError, OutOfBlocksError
from tether.kvcache.eviction import EvictionPolicy
from tether.kvcache.prefix_index import PrefixIndex

DROP_LOG_SIZE = 1 << 16
"""Recent dropped hashes kept for ``dropped_since``; an older prefix match is redone from scratch."""


class BlockPool:
    """Reference-counted blocks with a free queue, an eviction policy and the prefix index.

    Rules:
    - ``allocate`` takes the head of the free queue, else evicts ``eviction.pop_victim()`` (dropping its
      hash from the index), else raises ``OutOfBlocksError``; the block comes back with ``ref_count == 1``.
    - ``incref`` of an evictable block takes it out of eviction; ``incref`` of a free-queue block is an error.
    - ``decref`` to 0 sends a hashed block to eviction and an unhashed one to the tail of the free queue.
    - ``on_evict``, when set, sees each victim of ``allocate`` while it still carries its hash (the hook may
      queue a copy of it elsewhere; it must not change this pool). ``reset_prefix_cache`` is not eviction.
    """

    def __init__(self, num_blocks: int, eviction: EvictionPolicy):
        if num_blocks <= 0:
            raise InvalidKVRequestError(f"a pool needs at least one block, got num_blocks={num_blocks}")
        self.num_blocks = num_blocks
        self.eviction = eviction
        self.blocks: list[Block] = [Block(block_id=i) for i in range(num_blocks)]
        self.free_queue: deque[int] = deque(range(num_blocks))
        self.index = PrefixIndex(self.blocks)
        self.on_evict: Callable[[Block], None] | None = None
        self.epoch = 0
        """Counts hashes dropped from the index; ``dropped_since(epoch)`` lists the recent ones."""
        self._dropped: deque[int] = deque(maxlen=DROP_LOG_SIZE)

    @property
    def num_free_blocks(self) -> int:
        """Blocks ``allocate`` can still hand out: the free queue plus the evictable cached blocks."""
        return len(self.free_queue) + len(self.eviction)

    @property
    def num_cached_blocks(self) -> int:
        """Evictable blocks: ref 0, hashed, reusable on a prefix hit."""
        return len(self.eviction)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self.num_free_blocks

    def block(self, block_id: int) -> Block:
        if not 0 <= block_id < self.num_blocks:
            raise BlockStateError(f"block {block_id} does not exist in a pool of {self.num_blocks} blocks")
        return self.blocks[block_id]

    def allocate(self) -> int:
        if self.free_queue:
            block_id = self.free_queue.popleft()
            block = self.blocks[block_id]
        else:
            block_id = self.eviction.pop_victim()
            if block_id is None:
                raise OutOfBlocksError(f"no free or evictable block left in a pool of {self.num_blocks}")
            block = self.blocks[block_id]
            if self.on_evict is not None:
                self.on_evict(block)
            self._drop_hash(block)
        block.ref_count = 1
        return block_id

    def incref(self, block_id: int) -> None:
        self.incref_all((block_id,))

    def incref_all(self, block_ids: Iterable[int]) -> None:
        """``incref`` each block in the order given (one loop: pins and prefix hits take hundreds)."""
        blocks, num_blocks, eviction = self.blocks, self.num_blocks, self.eviction
        for block_id in block_ids:
            if not 0 <= block_id < num_blocks:
                raise BlockStateError(f"block {block_id} does not exist in a pool of {num_blocks} blocks")
            block = blocks[block_id]
            if block.ref_count == 0:
                if block.block_hash is None:  # ref 0 and unhashed: in the free queue, not evictable
                    raise BlockStateError(
                        f"block {block_id} is in the free queue; only cached blocks are reused"
                    )
                eviction.remove(block_id)
            block.ref_count += 1

    def decref(self, block_id: int, now: float) -> None:
        self.decref_all((block_id,), now)

    def is_evictable(self, block_id: int) -> bool:
        return block_id in self.eviction

    def decref_all(self, block_ids: Iterable[int], now: float) -> None:
        """``decref`` each block in the order given (the hot path of every free, so one loop, no calls)."""
        blocks, num_blocks = self.blocks, self.num_blocks
        for block_id in block_ids:
            if not 0 <= block_id < num_blocks:
                raise BlockStateError(f"block {block_id} does not exist in a pool of {num_blocks} blocks")
            block = blocks[block_id]
            if block.ref_count <= 0:
                raise BlockStateError(f"block {block_id} has ref_count {block.ref_count}; it cannot be freed")
            block.ref_count -= 1
            if block.ref_count > 0:
                continue
            if block.block_hash is not None:
                self.eviction.add(block_id, now)
            else:
                self.free_queue.append(block_id)

    def lookup(self, block_hash: int, parent_hash: int | None, token_ids: tuple[int, ...]) -> int | None:
        """The cached block for this chained hash, verified against its tokens; no side effects."""
        return self.index.lookup(block_hash, parent_hash, token_ids)

    def cache_block(
        self, block_id: int, block_hash: int, parent_hash: int | None, token_ids: tuple[int, ...]
    ) -> bool:
        """Register an in-use, full block under ``block_hash``.

        Returns ``False`` and leaves the block unhashed when another block already holds the hash (two
        sequences computed the same block); the existing entry wins.
        """
        block = self.block(block_id)
        if block.ref_count <= 0 or block.block_hash is not None:
            raise BlockStateError(
                f"block {block_id} cannot be cached: ref_count={block.ref_count}, hash={block.block_hash}"
            )
        if not self.index.insert(block_hash, block_id):
            return False
        block.set_hash(block_hash, parent_hash, token_ids)
        return True

    def first_stale_block(self, block_ids: Sequence[int], block_hashes: Sequence[int]) -> int | None:
        """The first block of ``block_ids`` that no longer holds its hash, or ``None`` if all still do."""
        for block_id, block_hash in zip(block_ids, block_hashes, strict=True):
            if self.block(block_id).block_hash != block_hash:
                return block_id
        return None

    def reset_prefix_cache(self) -> bool:
        """Unhash every evictable block and move it to the free queue, in eviction order.

        Returns ``True`` when the index is empty afterwards, ``False`` when blocks in use keep their hashes.
        """
        while (victim := self.eviction.pop_victim()) is not None:
            self._drop_hash(self.blocks[victim])
            self.free_queue.append(victim)
        return len(self.index) == 0

    def dropped_since(self, epoch: int) -> Iterable[int] | None:
        """The hashes dropped after ``epoch`` (newest first), or ``None`` when they left the bounded log.

        O(hashes dropped since ``epoch``): the log is read from its newest end, never skipped through.
        """
        n = self.epoch - epoch
        if n < 0 or n > len(self._dropped):
            return None
        return itertools.islice(reversed(self._dropped), n)

    def _drop_hash(self, block: Block) -> None:
        if block.block_hash is None:
            raise BlockStateError(f"block {block.block_id} was evictable without a hash")
        self.index.remove(block.block_hash, block.block_id)
        self._dropped.append(block.block_hash)
        block.clear_hash()
        self.epoch += 1
