"""Eviction policies: the LRU order, the registry, and the order the manager feeds them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import tether.kvcache.eviction as kvcache_eviction
from tether.kvcache import (
    BlockStateError,
    EvictionPolicy,
    KVCacheManager,
    LRUEviction,
    UnknownEvictionPolicyError,
    get_eviction_policy,
)

A = [1, 2, 3, 4, 5, 6, 7, 8]
B = [11, 12, 13, 14, 15, 16, 17, 18]


class MRUEviction(LRUEviction):
    """Most recently freed first: a second policy to show the pool holds no order of its own."""

    def pop_victim(self) -> int | None:
        if not self._freed_at:
            return None
        block_id, _ = self._freed_at.popitem(last=True)
        return block_id


def test_lru_policy_order_and_errors() -> None:
    lru = LRUEviction()
    assert isinstance(lru, EvictionPolicy)
    lru.add(5, 1.0)
    lru.add(3, 2.0)
    lru.add(7, 3.0)
    assert (len(lru), 3 in lru, 4 in lru, lru.freed_at(7)) == (3, True, False, 3.0)
    lru.remove(3)
    with pytest.raises(BlockStateError, match="block 3 is not evictable"):
        lru.remove(3)
    with pytest.raises(BlockStateError, match="block 5 is already evictable"):
        lru.add(5, 4.0)
    assert [lru.pop_victim(), lru.pop_victim(), lru.pop_victim()] == [5, 7, None]
    assert len(lru) == 0


def test_registry() -> None:
    first, second = get_eviction_policy("lru"), get_eviction_policy("lru")
    assert isinstance(first, LRUEviction) and first is not second
    with pytest.raises(UnknownEvictionPolicyError, match="'fifo'; registered: lru"):
        get_eviction_policy("fifo")


def test_manager_evicts_tail_first_then_least_recently_freed(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    for seq_id, tokens in (("a", A), ("b", B)):
        kv.allocate(seq_id, 8)
        kv.cache_blocks(seq_id, tokens, 8)
    clock.tick()
    kv.free("a")
    clock.tick()
    kv.free("b")
    kv.check_integrity()
    assert repr(kv.pool.eviction) == "LRUEviction(order=[1, 0, 3, 2])"
    assert kv.pool.eviction.freed_at(0) == 1.0
    assert kv.pool.eviction.freed_at(2) == 2.0

    assert kv.allocate("c", 4) == [1]
    kv.check_integrity()
    assert kv.match([*A, 0]).block_ids == (0,)
    assert kv.pool.blocks[1].block_hash is None
    assert [kv.allocate(s, 4) for s in ("d", "e", "f")] == [[0], [3], [2]]
    kv.check_integrity()
    assert (kv.num_cached_blocks, len(kv.pool.index)) == (0, 0)
    assert kv.match([*B, 0]).block_ids == ()


def test_a_hit_refreshes_a_block_in_the_lru_order(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    for seq_id, tokens in (("a", A), ("b", B)):
        kv.allocate(seq_id, 8)
        kv.cache_blocks(seq_id, tokens, 8)
    kv.free("a")
    kv.free("b")
    clock.tick()
    assert kv.allocate("c", 5, kv.match(A[:5])) == [0, 1]
    kv.free("c")
    kv.check_integrity()
    assert repr(kv.pool.eviction) == "LRUEviction(order=[3, 2, 0])"
    assert list(kv.pool.free_queue) == [1]


@pytest.mark.parametrize(
    ("eviction", "expected"),
    [("lru", [1, 0, 3, 2]), (MRUEviction, [2, 3, 0, 1])],
)
def test_policy_is_pluggable(
    monkeypatch: pytest.MonkeyPatch, clock, eviction: str | Callable[[], EvictionPolicy], expected: list[int]
) -> None:
    if not isinstance(eviction, str):
        monkeypatch.setitem(kvcache_eviction._POLICIES, "mru", eviction)
        eviction = "mru"
    kv = KVCacheManager(num_blocks=4, block_size=4, eviction=eviction, clock=clock)
    for seq_id, tokens in (("a", A), ("b", B)):
        kv.allocate(seq_id, 8)
        kv.cache_blocks(seq_id, tokens, 8)
    kv.free("a")
    kv.free("b")
    victims = [kv.allocate(s, 4)[0] for s in ("c", "d", "e", "f")]
    kv.check_integrity()
    assert victims == expected


def test_manager_accepts_a_policy_instance() -> None:
    policy = MRUEviction()
    kv = KVCacheManager(num_blocks=2, block_size=4, eviction=policy)
    assert kv.pool.eviction is policy
