"""Invariants of a block pool and the references its owners hold.

``check_pool_integrity`` raises ``KVCacheIntegrityError`` naming the first block that breaks a rule:

- every block is in exactly one place: free queue (ref 0, no hash), evictable (ref 0, hashed) or in use;
- free queue + evictable + in use == total, with no block twice in the free queue;
- each block's ``ref_count`` equals the references owners hold on it;
- every index entry points at a block carrying that hash, and every hashed block is the entry for its hash;
- hashed blocks hold exactly ``block_size`` tokens, unhashed blocks hold none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from tether.kvcache.block import Block
from tether.kvcache.block_pool import BlockPool
from tether.kvcache.errors import KVCacheIntegrityError


def check_pool_integrity(pool: BlockPool, ref_counts: Mapping[int, int], block_size: int) -> None:
    """Raise ``KVCacheIntegrityError`` when ``pool`` or ``ref_counts`` (owners' references) break a rule."""
    _check_free_queue(pool)
    free_set = set(pool.free_queue)
    for block in pool.blocks:
        _check_block(pool, block, block.block_id in free_set, ref_counts.get(block.block_id, 0), block_size)
    _check_totals(pool)
    _check_index(pool)
    unknown = sorted(set(ref_counts) - set(range(pool.num_blocks)))
    if unknown:
        raise KVCacheIntegrityError(f"owners hold references on blocks {unknown} that do not exist")


def _fail(block_id: int, rule: str) -> None:
    raise KVCacheIntegrityError(f"block {block_id}: {rule}")


def _check_free_queue(pool: BlockPool) -> None:
    counts = Counter(pool.free_queue)
    for block_id, count in counts.items():
        if not 0 <= block_id < pool.num_blocks:
            _fail(block_id, "is in the free queue but does not exist")
        if count > 1:
            _fail(block_id, f"appears {count} times in the free queue")
        block = pool.blocks[block_id]
        if block.ref_count != 0:
            _fail(block_id, f"is in the free queue with ref_count {block.ref_count}")
        if block.is_cached:
            _fail(block_id, f"is in the free queue but still has hash {block.block_hash}")


def _check_block(
    pool: BlockPool, block: Block, in_free_queue: bool, owner_refs: int, block_size: int
) -> None:
    block_id = block.block_id
    if block.ref_count != owner_refs:
        _fail(block_id, f"ref_count is {block.ref_count} but owners hold {owner_refs} references")
    evictable = block_id in pool.eviction
    if block.ref_count > 0 and (evictable or in_free_queue):
        where = "evictable" if evictable else "in the free queue"
        _fail(block_id, f"is in use (ref_count {block.ref_count}) and {where}")
    if block.ref_count == 0 and block.is_cached and not evictable:
        _fail(block_id, "has ref_count 0 and a hash but is not evictable")
    if block.ref_count == 0 and not block.is_cached and not in_free_queue:
        _fail(block_id, "has ref_count 0 and no hash but is not in the free queue")
    if evictable and not block.is_cached:
        _fail(block_id, "is evictable without a hash")
    if block.is_cached and len(block.token_ids) != block_size:
        _fail(block_id, f"is hashed with {len(block.token_ids)} tokens, expected {block_size}")
    if not block.is_cached and (block.token_ids or block.parent_hash is not None):
        _fail(block_id, "has no hash but keeps tokens or a parent hash")


def _check_totals(pool: BlockPool) -> None:
    in_use = sum(1 for block in pool.blocks if block.ref_count > 0)
    evictable = sum(1 for block in pool.blocks if block.ref_count == 0 and block.is_cached)
    if len(pool.eviction) != evictable:
        raise KVCacheIntegrityError(
            f"eviction policy holds {len(pool.eviction)} blocks but {evictable} blocks are evictable"
        )
    total = len(pool.free_queue) + len(pool.eviction) + in_use
    if total != pool.num_blocks:
        raise KVCacheIntegrityError(
            f"free queue ({len(pool.free_queue)}) + evictable ({len(pool.eviction)}) + in use ({in_use})"
            f" = {total}, expected {pool.num_blocks} blocks"
        )


def _check_index(pool: BlockPool) -> None:
    for block_hash, block_id in pool.index.items():
        if not 0 <= block_id < pool.num_blocks:
            raise KVCacheIntegrityError(f"index entry {block_hash} points at missing block {block_id}")
        if pool.blocks[block_id].block_hash != block_hash:
            carried = pool.blocks[block_id].block_hash
            _fail(block_id, f"is indexed under {block_hash} but carries hash {carried}")
    for block in pool.blocks:
        if (
            block.block_hash is not None
            and pool.index.lookup(block.block_hash, block.parent_hash, block.token_ids) != block.block_id
        ):
            _fail(block.block_id, f"carries hash {block.block_hash} but the index does not point at it")
