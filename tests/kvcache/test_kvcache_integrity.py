"""check_integrity() detects each kind of deliberate corruption and names the block at fault."""

from __future__ import annotations

import pytest

from tether.kvcache import KVCacheIntegrityError, KVCacheManager

A = [1, 2, 3, 4, 5, 6, 7, 8]


def setup_manager() -> KVCacheManager:
    """Blocks: 0, 1 hashed and in use by "a"; 2, 3 hashed and evictable (freed "b"); nothing free."""
    kv = KVCacheManager(num_blocks=5, block_size=4)
    kv.allocate("a", 8)
    kv.cache_blocks("a", A, 8)
    kv.allocate("b", 8)
    kv.cache_blocks("b", [0, *A[:7]], 8)
    kv.allocate("c", 1)
    kv.free("b")
    kv.check_integrity()
    return kv


def test_detects_a_corrupted_ref_count() -> None:
    kv = setup_manager()
    kv.pool.blocks[0].ref_count += 1
    with pytest.raises(KVCacheIntegrityError, match="block 0: ref_count is 2 but owners hold 1 references"):
        kv.check_integrity()


def test_detects_an_evictable_block_in_use() -> None:
    kv = setup_manager()
    kv.pool.blocks[2].ref_count = 1
    with pytest.raises(KVCacheIntegrityError, match="block 2: ref_count is 1 but owners hold 0"):
        kv.check_integrity()


def test_detects_a_lost_block() -> None:
    kv = setup_manager()
    kv.free("c")
    kv.pool.free_queue.pop()
    with pytest.raises(KVCacheIntegrityError, match="block 4: has ref_count 0 and no hash but is not in"):
        kv.check_integrity()


def test_detects_a_block_in_two_places() -> None:
    kv = setup_manager()
    kv.pool.free_queue.append(2)
    with pytest.raises(KVCacheIntegrityError, match="block 2: is in the free queue but still has hash"):
        kv.check_integrity()
    kv.pool.free_queue.pop()
    kv.free("c")
    kv.pool.free_queue.append(4)
    with pytest.raises(KVCacheIntegrityError, match="block 4: appears 2 times in the free queue"):
        kv.check_integrity()


def test_detects_an_index_entry_pointing_elsewhere() -> None:
    kv = setup_manager()
    block_hash = kv.pool.blocks[0].block_hash
    assert block_hash is not None
    kv.pool.index._by_hash[block_hash] = 1
    with pytest.raises(KVCacheIntegrityError, match="block 1: is indexed under"):
        kv.check_integrity()


def test_detects_a_hashed_block_missing_from_the_index() -> None:
    kv = setup_manager()
    block_hash = kv.pool.blocks[3].block_hash
    assert block_hash is not None
    kv.pool.index.remove(block_hash, 3)
    with pytest.raises(KVCacheIntegrityError, match="block 3: carries hash .* index does not point at it"):
        kv.check_integrity()


def test_detects_a_hashed_block_dropped_from_eviction() -> None:
    kv = setup_manager()
    kv.pool.eviction.remove(3)
    with pytest.raises(KVCacheIntegrityError, match="block 3: has ref_count 0 and a hash but is not evict"):
        kv.check_integrity()
