"""The CPU tier: offload on eviction, CPU prefix hits, park / prefetch, CPU LRU order, exact copies."""

from __future__ import annotations

import pytest

from tether.kvcache import (
    BlockCopy,
    KVCacheManager,
    KVStats,
    OutOfCpuBlocksError,
    PendingCopies,
    PrefixMatch,
    StalePrefixError,
    hash_block,
)

A = [1, 2, 3, 4, 5, 6, 7, 8]
B = [11, 12, 13, 14, 15, 16, 17, 18]
H0 = hash_block(None, (1, 2, 3, 4))
H1 = hash_block(H0, (5, 6, 7, 8))


def cached(kv: KVCacheManager, seq_id: str, tokens: list[int]) -> list[int]:
    table = kv.allocate(seq_id, len(tokens))
    kv.cache_blocks(seq_id, tokens, len(tokens))
    kv.check_integrity()
    return table


def pinned(kv: KVCacheManager, pin_id: str, tokens: list[int], expires_at: float = 100.0) -> tuple[int, ...]:
    """Run ``tokens`` as a turn over its cached prefix, pin it and free the sequence."""
    kv.allocate(pin_id, len(tokens), kv.match(tokens))
    kv.cache_blocks(pin_id, tokens, len(tokens))
    block_ids = kv.pin(pin_id, pin_id, expires_at)
    kv.free(pin_id)
    kv.check_integrity()
    return block_ids


def cpu_refs(kv: KVCacheManager) -> list[int]:
    assert kv.cpu_tier.pool is not None
    return [block.ref_count for block in kv.cpu_tier.pool.blocks]


def cpu_order(kv: KVCacheManager) -> str:
    assert kv.cpu_tier.pool is not None
    return repr(kv.cpu_tier.pool.eviction)


def test_offload_on_evict_then_a_cpu_hit_is_copied_back(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, num_cpu_blocks=4, offload_on_evict=True, clock=clock)
    assert (kv.num_cpu_blocks, kv.num_free_cpu_blocks) == (4, 4)
    cached(kv, "a", A)
    clock.tick()
    kv.free("a")
    assert kv.allocate("b", 16) == [2, 3, 1, 0]
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(1, 0), BlockCopy(0, 1)))
    assert kv.take_pending_copies() == PendingCopies()
    assert kv.stats() == KVStats(blocks_to_cpu=2, gpu_evictions=2)
    assert [kv.cpu_tier.block(i).block_hash for i in range(4)] == [H1, H0, None, None]
    assert (cpu_order(kv), kv.num_free_cpu_blocks) == ("LRUEviction(order=[0, 1])", 4)

    kv.free("b")
    kv.check_integrity()
    prefix = kv.match([*A, 0])
    assert prefix == PrefixMatch(block_ids=(), num_tokens=8, block_hashes=(H0, H1), cpu_block_ids=(1, 0))
    assert (prefix.num_gpu_tokens, prefix.num_blocks) == (0, 2)
    assert kv.num_blocks_needed("c", 9, prefix) == 3
    assert kv.allocate("c", 9, prefix) == [0, 1, 3]
    kv.check_integrity()
    assert cpu_refs(kv) == [1, 1, 0, 0]
    assert kv.match([*A, 0]) == PrefixMatch((0, 1), 8, (H0, H1))
    assert kv.take_pending_copies() == PendingCopies(to_gpu=(BlockCopy(1, 0), BlockCopy(0, 1)))
    kv.check_integrity()
    assert (cpu_refs(kv), cpu_order(kv)) == ([0, 0, 0, 0], "LRUEviction(order=[0, 1])")
    assert kv.stats() == KVStats(blocks_to_cpu=2, blocks_to_gpu=2, gpu_evictions=2, cpu_hit_blocks=2)


def test_gpu_run_then_cpu_run_and_evict_then_refill_in_one_step(clock, state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, num_cpu_blocks=2, offload_on_evict=True, clock=clock)
    cached(kv, "a", A)
    kv.free("a")
    assert kv.allocate("x", 12) == [2, 3, 1]
    prefix = kv.match([*A, 0])
    assert prefix == PrefixMatch((0,), 8, (H0, H1), (0,))
    assert (prefix.num_gpu_tokens, kv.num_blocks_needed("c", 9, prefix)) == (4, 2)
    before = state(kv)
    assert not kv.can_allocate("c", 9, prefix)
    assert state(kv) == before

    kv.free("x")
    assert list(kv.pool.free_queue) == [1, 3, 2]
    assert kv.can_allocate("c", 9, prefix)
    assert kv.allocate("c", 9, prefix) == [0, 1, 3]
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(1, 0),), to_gpu=(BlockCopy(0, 1),))
    kv.check_integrity()
    assert kv.stats() == KVStats(
        blocks_to_cpu=1, blocks_to_gpu=1, gpu_evictions=1, gpu_hit_blocks=1, cpu_hit_blocks=1
    )


def test_a_cpu_prefix_evicted_since_match_is_stale(clock) -> None:
    kv = KVCacheManager(num_blocks=2, block_size=4, num_cpu_blocks=1, offload_on_evict=True, clock=clock)
    cached(kv, "a", A)
    kv.free("a")
    assert (kv.allocate("x", 4), kv.allocate("y", 4)) == ([1], [0])
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(1, 0), BlockCopy(0, 0)))
    assert kv.stats().cpu_evictions == 1
    prefix = kv.match([*A, 0])
    assert prefix == PrefixMatch((), 4, (H0,), (0,))

    kv.free("x")
    kv.free("y")
    cached(kv, "b", B)
    kv.free("b")
    assert kv.allocate("z", 8) == [0, 1]
    kv.check_integrity()
    assert kv.stats().cpu_evictions == 3
    with pytest.raises(StalePrefixError, match="'c': prefix CPU block 0 no longer holds its matched hash"):
        kv.can_allocate("c", 5, prefix)
    with pytest.raises(StalePrefixError, match="prefix CPU block 0"):
        kv.allocate("c", 5, prefix)
    assert not kv.has_seq("c")
    kv.check_integrity()


def test_offload_skips_when_every_cpu_block_is_referenced(clock) -> None:
    kv = KVCacheManager(num_blocks=3, block_size=4, num_cpu_blocks=1, offload_on_evict=True, clock=clock)
    assert pinned(kv, "p", [*A[:4], 0]) == (0,)
    assert kv.park("p") == 1
    cached(kv, "b", B)
    kv.free("b")
    assert kv.allocate("x", 12) == [0, 1, 2]
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(0, 0),))
    assert kv.stats() == KVStats(blocks_to_cpu=1, gpu_evictions=3)


def test_park_and_prefetch_round_trip(clock, state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, num_cpu_blocks=4, clock=clock)
    assert pinned(kv, "p", [*A, 9]) == (0, 1)
    assert list(kv.pool.free_queue) == [3, 2]
    clock.tick()
    assert kv.can_park("p")
    assert kv.park("p") == 2
    kv.check_integrity()
    info = kv.pins["p"]
    assert (info.parked, info.block_ids, info.cpu_block_ids) == (True, (), (0, 1))
    assert (kv.num_pinned_blocks, kv.pin_exclusive_blocks("p")) == (0, 0)
    assert repr(kv.pool.eviction) == "LRUEviction(order=[1, 0])"
    assert (cpu_refs(kv), kv.num_free_cpu_blocks) == ([1, 1, 0, 0], 2)
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(0, 0), BlockCopy(1, 1)))

    # Both GPU blocks survived: prefetch takes them back without a copy.
    assert kv.can_prefetch("p")
    assert kv.prefetch("p") is True
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies()
    info = kv.pins["p"]
    assert (info.parked, info.block_ids, info.cpu_block_ids) == (False, (0, 1), ())
    assert (cpu_refs(kv), cpu_order(kv)) == ([0, 0, 0, 0], "LRUEviction(order=[1, 0])")
    assert kv.prefetch("p") is True

    # The hashes are still on CPU: parking again copies nothing.
    assert kv.park("p") == 0
    kv.check_integrity()
    assert kv.take_pending_copies() == PendingCopies()
    assert (kv.pins["p"].cpu_block_ids, cpu_order(kv)) == ((0, 1), "LRUEviction(order=[])")
    assert kv.park("p") == 0

    # Block 1 is evicted on the GPU: prefetch needs a new block for it plus block 0 out of eviction.
    assert kv.allocate("x", 12) == [3, 2, 1]
    before = state(kv)
    assert not kv.can_prefetch("p")
    assert kv.prefetch("p") is False
    assert state(kv) == before
    kv.free("x")
    assert kv.allocate("z", 4) == [1]
    assert kv.prefetch("p") is True
    kv.check_integrity()
    assert kv.pins["p"].block_ids == (0, 2)
    assert cpu_refs(kv) == [0, 1, 0, 0]
    assert kv.take_pending_copies() == PendingCopies(to_gpu=(BlockCopy(1, 2),))
    kv.check_integrity()
    assert (cpu_refs(kv), cpu_order(kv)) == ([0, 0, 0, 0], "LRUEviction(order=[0, 1])")
    assert kv.match([*A, 0]).block_ids == (0, 2)
    assert kv.stats() == KVStats(blocks_to_cpu=2, blocks_to_gpu=1, gpu_evictions=1)
    assert kv.unpin("p") == 2
    kv.check_integrity()
    assert repr(kv.pool.eviction) == "LRUEviction(order=[2, 0])"


def test_unpin_or_replace_a_parked_pin_releases_its_cpu_blocks(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, num_cpu_blocks=2, clock=clock)
    pinned(kv, "p", [*A, 9])
    kv.park("p")
    assert kv.unpin("p") == 2
    kv.check_integrity()
    assert (cpu_refs(kv), cpu_order(kv)) == ([0, 0], "LRUEviction(order=[1, 0])")

    pinned(kv, "q", [*A, 9])
    assert kv.park("q") == 0
    assert kv.allocate("s", 5, kv.match([*A[:4], 0])) == [0, 2]
    assert kv.pin("q", "s", 1.0) == (0,)
    kv.check_integrity()
    assert (cpu_refs(kv), kv.pins["q"].parked) == ([0, 0], False)
    assert cpu_order(kv) == "LRUEviction(order=[1, 0])"


def test_can_park_false_changes_nothing(clock, state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, num_cpu_blocks=1, clock=clock)
    pinned(kv, "p", [*A, 9])
    before = state(kv)
    assert not kv.can_park("p")
    with pytest.raises(
        OutOfCpuBlocksError, match="pin 'p' needs 2 CPU blocks to park 2 blocks, but only 1 of 1"
    ):
        kv.park("p")
    assert state(kv) == before
    kv.check_integrity()

    no_tier = KVCacheManager(num_blocks=4, block_size=4)
    pinned(no_tier, "p", [*A, 9])
    pinned(no_tier, "empty", [1, 2])
    assert (no_tier.num_cpu_blocks, no_tier.num_free_cpu_blocks) == (0, 0)
    assert (no_tier.can_park("p"), no_tier.can_park("empty")) == (False, True)
    with pytest.raises(OutOfCpuBlocksError, match="only 0 of 0 CPU blocks"):
        no_tier.park("p")
    assert no_tier.park("empty") == 0
    no_tier.check_integrity()
    assert no_tier.match([*A, 0]).cpu_block_ids == ()


def test_cpu_lru_order(clock) -> None:
    kv = KVCacheManager(num_blocks=8, block_size=4, num_cpu_blocks=3, clock=clock)
    starts = {"a": 1, "b": 5, "c": 9, "d": 13, "e": 17}
    blocks = {name: pinned(kv, name, [*range(s, s + 4), 0]) for name, s in starts.items()}
    assert blocks == {"a": (0,), "b": (2,), "c": (4,), "d": (6,), "e": (1,)}
    assert [kv.park(name) for name in "abc"] == [1, 1, 1]
    assert kv.take_pending_copies() == PendingCopies(
        to_cpu=(BlockCopy(0, 0), BlockCopy(2, 1), BlockCopy(4, 2))
    )
    for name in "bac":
        clock.tick()
        assert kv.unpin(name) == 1
    kv.check_integrity()
    assert cpu_order(kv) == "LRUEviction(order=[1, 0, 2])"

    assert kv.park("d") == 1
    assert cpu_order(kv) == "LRUEviction(order=[0, 2])"
    assert kv.cpu_tier.block(1).block_hash == hash_block(None, (13, 14, 15, 16))
    assert pinned(kv, "f", [1, 2, 3, 4, 0]) == (0,)
    assert kv.park("f") == 0
    assert kv.unpin("f") == 1
    assert cpu_order(kv) == "LRUEviction(order=[2, 0])"
    assert kv.park("e") == 1
    kv.check_integrity()
    assert cpu_order(kv) == "LRUEviction(order=[0])"
    assert kv.take_pending_copies() == PendingCopies(to_cpu=(BlockCopy(6, 1), BlockCopy(1, 2)))
    assert kv.stats().cpu_evictions == 2
