"""Prefix caching: what match() finds, what cache_blocks() indexes, adoption and its accounting."""

from __future__ import annotations

import pytest

import tether.kvcache.manager as kvcache_manager
from tether.kvcache import KVCacheManager, OutOfBlocksError, PrefixMatch, StalePrefixError, hash_block

A = [1, 2, 3, 4, 5, 6, 7, 8]
B = [9, 9, 9, 9, 1, 1, 1, 1]


def cached(kv: KVCacheManager, seq_id: str, tokens: list[int]) -> list[int]:
    """Allocate ``tokens`` for ``seq_id``, mark them all computed and cache them."""
    table = kv.allocate(seq_id, len(tokens))
    kv.cache_blocks(seq_id, tokens, len(tokens))
    kv.check_integrity()
    return table


def test_match_hits_full_blocks_and_leaves_the_last_token(state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    assert cached(kv, "a", A) == [0, 1]
    before = state(kv)
    h0 = hash_block(None, (1, 2, 3, 4))
    h1 = hash_block(h0, (5, 6, 7, 8))

    assert kv.match(A) == PrefixMatch(block_ids=(0,), num_tokens=4, block_hashes=(h0,))
    assert kv.match([*A, 0]) == PrefixMatch(block_ids=(0, 1), num_tokens=8, block_hashes=(h0, h1))
    assert kv.match(A[:5]) == PrefixMatch((0,), 4, (h0,))
    assert kv.match(A[:4]) == PrefixMatch()
    assert kv.match([]) == PrefixMatch()
    assert kv.match([1, 2, 3, 5, 5]) == PrefixMatch()
    assert state(kv) == before
    kv.check_integrity()


def test_partial_and_uncomputed_blocks_are_not_indexed() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    tokens = [*A, 10, 11]
    kv.allocate("a", len(tokens))
    kv.cache_blocks("a", tokens, 6)
    kv.check_integrity()
    assert len(kv.pool.index) == 1
    assert kv.match([*tokens, 12, 13, 14]).block_ids == (0,)

    kv.cache_blocks("a", tokens, 10)
    kv.check_integrity()
    assert len(kv.pool.index) == 2
    assert kv.pool.blocks[2].block_hash is None
    assert kv.match([*tokens, 12, 13, 14]).block_ids == (0, 1)

    kv.cache_blocks("a", tokens, 10)
    assert len(kv.pool.index) == 2
    kv.check_integrity()


def test_decode_growth_caches_incrementally() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    tokens = [1, 2, 3]
    kv.allocate("a", 3)
    kv.cache_blocks("a", tokens, 3)
    for token in (4, 5, 6, 7, 8):
        tokens.append(token)
        kv.allocate("a", len(tokens))
        kv.cache_blocks("a", tokens, len(tokens) - 1)
        kv.check_integrity()
    assert kv.block_table("a") == [0, 1]
    assert kv.match([*A, 0]).block_ids == (0,)
    kv.cache_blocks("a", tokens, len(tokens))
    assert kv.match([*A, 0]).block_ids == (0, 1)
    kv.check_integrity()


def test_hash_chain_same_tokens_under_another_parent_miss() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    cached(kv, "a", A)
    cached(kv, "b", B)
    assert kv.match([9, 9, 9, 9, 5, 6, 7, 8, 0]).block_ids == (2,)
    assert kv.match([*B, 0]).block_ids == (2, 3)
    kv.check_integrity()


def test_forced_hash_collision_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kvcache_manager, "hash_block", lambda parent_hash, token_ids: 42)
    kv = KVCacheManager(num_blocks=4, block_size=4)
    cached(kv, "a", [1, 2, 3, 4, 1, 2, 3, 4])
    assert kv.pool.blocks[0].block_hash == 42
    assert kv.pool.blocks[1].block_hash is None
    assert kv.match([5, 6, 7, 8, 0]) == PrefixMatch()
    assert kv.match([1, 2, 3, 4, 1, 2, 3, 4, 0]) == PrefixMatch((0,), 4, (42,))
    kv.check_integrity()


def test_adopting_an_evictable_prefix_takes_it_out_of_eviction(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    cached(kv, "a", A)
    kv.free("a")
    kv.check_integrity()
    assert (kv.num_cached_blocks, kv.num_free_blocks, kv.num_used_blocks) == (2, 4, 0)

    prefix = kv.match([*A, 0])
    assert prefix.block_ids == (0, 1)
    assert kv.num_blocks_needed("b", 9, prefix) == 1
    assert kv.allocate("b", 9, prefix) == [0, 1, 2]
    kv.check_integrity()
    assert 0 not in kv.pool.eviction and 1 not in kv.pool.eviction
    assert [kv.pool.blocks[i].ref_count for i in range(4)] == [1, 1, 1, 0]
    assert (kv.num_cached_blocks, kv.num_free_blocks) == (0, 1)

    kv.free("b")
    kv.check_integrity()
    assert list(kv.pool.free_queue) == [3, 2]
    assert kv.pool.eviction.pop_victim() == 1


def test_sharing_a_running_prefix_adds_a_reference() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    cached(kv, "a", A)
    prefix = kv.match([*A, 0])
    assert kv.num_blocks_needed("b", 9, prefix) == 1
    assert kv.allocate("b", 9, prefix) == [0, 1, 2]
    assert [b.ref_count for b in kv.pool.blocks] == [2, 2, 1, 0]
    kv.check_integrity()
    kv.free("a")
    kv.check_integrity()
    assert kv.num_cached_blocks == 0
    assert [b.ref_count for b in kv.pool.blocks] == [1, 1, 1, 0]


def test_can_allocate_counts_evictable_prefix_blocks(state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    cached(kv, "a", A)
    kv.free("a")
    assert kv.allocate("b", 4) == [2]
    kv.check_integrity()
    assert kv.num_free_blocks == 3

    prompt = [*A, 20, 21, 22, 23, 24]
    prefix = kv.match(prompt)
    assert prefix.block_ids == (0, 1)
    assert kv.num_blocks_needed("c", 13, prefix) == 2
    assert not kv.can_allocate("c", 13, prefix)
    before = state(kv)
    with pytest.raises(OutOfBlocksError, match="'c' needs 2 new blocks \\(\\+2 evictable prefix blocks\\)"):
        kv.allocate("c", 13, prefix)
    assert state(kv) == before
    kv.check_integrity()

    assert kv.can_allocate("c", 12, prefix)
    assert kv.allocate("c", 12, prefix) == [0, 1, 3]
    kv.check_integrity()
    assert kv.num_free_blocks == 0


def test_a_stale_prefix_is_refused(clock) -> None:
    kv = KVCacheManager(num_blocks=2, block_size=4, clock=clock)
    cached(kv, "a", A)
    kv.free("a")
    prefix = kv.match([*A, 0])
    kv.allocate("b", 4)
    kv.check_integrity()
    with pytest.raises(StalePrefixError, match="'c': prefix block 1"):
        kv.can_allocate("c", 9, prefix)
    with pytest.raises(StalePrefixError, match="prefix block 1"):
        kv.allocate("c", 9, prefix)
    assert not kv.has_seq("c")
    kv.check_integrity()


def test_concurrent_duplicate_blocks_keep_the_first_entry(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    assert kv.allocate("a", 8) == [0, 1]
    assert kv.allocate("b", 8) == [2, 3]
    kv.cache_blocks("a", A, 4)
    kv.cache_blocks("b", A, 8)
    kv.check_integrity()
    assert [b.block_hash is not None for b in kv.pool.blocks] == [True, False, False, True]
    assert kv.match([*A, 0]).block_ids == (0, 3)

    kv.cache_blocks("a", A, 8)
    kv.check_integrity()
    assert kv.pool.blocks[1].block_hash is None
    assert kv.match([*A, 0]).block_ids == (0, 3)

    kv.free("b")
    kv.check_integrity()
    assert list(kv.pool.free_queue) == [2]
    assert kv.num_cached_blocks == 1
    kv.free("a")
    kv.check_integrity()
    assert list(kv.pool.free_queue) == [2, 1]
    assert kv.num_cached_blocks == 2


def test_prefix_caching_disabled(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, enable_prefix_caching=False, clock=clock)
    kv.allocate("a", 8)
    kv.cache_blocks("a", A, 8)
    kv.check_integrity()
    assert len(kv.pool.index) == 0
    assert kv.match([*A, 0]) == PrefixMatch()
    kv.free("a")
    kv.check_integrity()
    assert kv.num_cached_blocks == 0
    assert list(kv.pool.free_queue) == [2, 3, 1, 0]


def test_reset_prefix_cache(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    cached(kv, "a", A)
    cached(kv, "b", B)
    kv.free("a")
    assert kv.reset_prefix_cache() is False
    kv.check_integrity()
    assert kv.num_cached_blocks == 0
    assert list(kv.pool.free_queue) == [1, 0]
    assert kv.match([*A, 0]) == PrefixMatch()
    assert kv.match([*B, 0]).block_ids == (2, 3)

    kv.free("b")
    assert kv.num_cached_blocks == 2
    assert kv.reset_prefix_cache() is True
    kv.check_integrity()
    assert list(kv.pool.free_queue) == [1, 0, 3, 2]
    assert kv.match([*B, 0]) == PrefixMatch()
    assert kv.num_free_blocks == 4


def test_match_since_extends_a_valid_match_and_redoes_a_stale_one(monkeypatch) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    cached(kv, "a", A)  # blocks 0, 1
    kv.free("a")
    first = kv.match(A[:5])  # one block
    assert first.block_ids == (0,)
    hashed: list[tuple[int, ...]] = []
    real_hash = kvcache_manager.hash_block

    def counting(parent_hash, token_ids):
        hashed.append(token_ids)
        return real_hash(parent_hash, token_ids)

    monkeypatch.setattr(kvcache_manager, "hash_block", counting)
    extended = kv.match([*A, 0], since=first)
    assert extended == kv.match([*A, 0]) and extended.block_ids == (0, 1)
    assert hashed[0] == (5, 6, 7, 8) and len(hashed) == 1 + 2  # the since path hashed only the new block
    assert kv.match([9, *A], since=first) == PrefixMatch()  # not a prefix of these tokens: matched afresh

    kv.allocate("b", 16)  # takes the free blocks, then evicts block 0 and 1 (LRU: 1 first, tail-first free)
    assert kv.match([*A, 0], since=extended) == kv.match([*A, 0]) == PrefixMatch()
    with pytest.raises(StalePrefixError):
        kv.allocate("c", 9, extended)
    kv.free("b")
    kv.check_integrity()
