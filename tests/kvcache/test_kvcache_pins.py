"""Pins: a program's blocks held across a tool call, their expiry, replacement, release order and sharing."""

from __future__ import annotations

import pytest

from tether.kvcache import (
    KVCacheManager,
    OutOfBlocksError,
    PinInfo,
    UnknownPinError,
    UnknownSequenceError,
)

A = [1, 2, 3, 4, 5, 6, 7, 8]
B = [11, 12, 13, 14, 15, 16, 17, 18]


def turn(kv: KVCacheManager, seq_id: str, tokens: list[int]) -> list[int]:
    """Allocate ``tokens`` for ``seq_id`` over their cached prefix, compute and cache them all."""
    table = kv.allocate(seq_id, len(tokens), kv.match(tokens))
    kv.cache_blocks(seq_id, tokens, len(tokens))
    kv.check_integrity()
    return table


def refs(kv: KVCacheManager) -> list[int]:
    return [block.ref_count for block in kv.pool.blocks]


def test_pinned_blocks_survive_free_and_pressure_and_serve_the_next_turn(clock, state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    first = [*A, 9, 10]
    assert turn(kv, "t1", first) == [0, 1, 2]
    assert kv.pin("prog", "t1", expires_at=5.0) == (0, 1)
    kv.check_integrity()
    kv.free("t1")
    kv.check_integrity()
    assert refs(kv) == [1, 1, 0, 0]
    assert list(kv.pool.free_queue) == [3, 2]
    assert (kv.num_pinned_blocks, kv.num_free_blocks, kv.num_cached_blocks) == (2, 2, 0)
    assert kv.pins == {"prog": PinInfo("prog", (0, 1), created_at=0.0, expires_at=5.0)}
    assert kv.has_pin("prog") and kv.pin_exclusive_blocks("prog") == 2

    assert kv.allocate("x", 8) == [3, 2]
    kv.check_integrity()
    before = state(kv)
    assert not kv.can_allocate("y", 1)
    with pytest.raises(OutOfBlocksError, match="'y' needs 1 new blocks"):
        kv.allocate("y", 1)
    assert state(kv) == before
    assert [kv.pool.blocks[i].block_hash is not None for i in range(4)] == [True, True, False, False]

    kv.free("x")
    kv.check_integrity()
    second = [*first, 11, 12, 13]
    prefix = kv.match(second)
    assert (prefix.block_ids, prefix.num_tokens, prefix.cpu_block_ids) == ((0, 1), 8, ())
    assert kv.allocate("t2", len(second), prefix) == [0, 1, 2, 3]
    kv.check_integrity()
    assert refs(kv) == [2, 2, 1, 1]
    assert kv.pin_exclusive_blocks("prog") == 0
    assert kv.unpin("prog") == 0
    kv.check_integrity()
    assert refs(kv) == [1, 1, 1, 1]
    assert (kv.pins, kv.has_pin("prog"), kv.num_pinned_blocks) == ({}, False, 0)
    assert kv.stats().gpu_hit_blocks == 2


def test_expired_pins_earliest_first_with_an_injected_clock(clock, state) -> None:
    kv = KVCacheManager(num_blocks=8, block_size=4, clock=clock)
    for name, tokens, expires_at in (("a", A, 7.0), ("b", B, 3.0), ("c", [*B[:4], *A[:4]], 7.0)):
        turn(kv, name, [*tokens, 0])
        kv.pin(f"p{name}", name, expires_at)
        kv.free(name)
        kv.check_integrity()
        clock.tick()
    assert [(info.created_at, info.expires_at) for info in kv.pins.values()] == [
        (0.0, 7.0),
        (1.0, 3.0),
        (2.0, 7.0),
    ]
    before = state(kv)
    assert kv.expired_pins(2.9) == []
    assert kv.expired_pins(3.0) == ["pb"]
    assert kv.expired_pins(10.0) == ["pb", "pa", "pc"]
    assert state(kv) == before

    kv.set_pin_expiry("pc", 1.0)
    assert kv.pins["pc"].expires_at == 1.0
    assert kv.expired_pins(3.0) == ["pc", "pb"]
    assert (kv.pins["pb"].block_ids, kv.pins["pc"].block_ids) == ((3, 4), (3, 6))
    assert [kv.unpin(pin_id) for pin_id in kv.expired_pins(3.0)] == [1, 2]
    kv.check_integrity()
    assert list(kv.pins) == ["pa"]
    assert repr(kv.pool.eviction) == "LRUEviction(order=[6, 4, 3])"


def test_unknown_pins_and_sequences_are_typed_errors() -> None:
    kv = KVCacheManager(num_blocks=2, block_size=4)
    for call in (kv.unpin, kv.pin_exclusive_blocks, kv.park, kv.can_park, kv.prefetch, kv.can_prefetch):
        with pytest.raises(UnknownPinError, match="unknown pin 'nope'"):
            call("nope")
    with pytest.raises(UnknownPinError, match="unknown pin 'nope'"):
        kv.set_pin_expiry("nope", 1.0)
    with pytest.raises(UnknownSequenceError, match="unknown sequence 's'"):
        kv.pin("p", "s", 1.0)
    kv.check_integrity()


def test_replacing_a_pin_takes_the_new_refs_then_releases_the_old(clock) -> None:
    kv = KVCacheManager(num_blocks=6, block_size=4, clock=clock)
    assert turn(kv, "a", [*A, 0]) == [0, 1, 2]
    assert kv.pin("p", "a", 5.0) == (0, 1)
    kv.free("a")
    assert list(kv.pool.free_queue) == [3, 4, 5, 2]
    clock.tick()

    assert turn(kv, "b", [*A, *B[:4], 0]) == [0, 1, 3, 4]
    assert refs(kv) == [2, 2, 0, 1, 1, 0]
    assert kv.pin("p", "b", 9.0) == (0, 1, 3)
    kv.check_integrity()
    assert refs(kv) == [2, 2, 0, 2, 1, 0]
    assert kv.pins["p"] == PinInfo("p", (0, 1, 3), created_at=1.0, expires_at=9.0)
    assert len(kv.pool.eviction) == 0

    kv.free("b")
    kv.check_integrity()
    assert refs(kv) == [1, 1, 0, 1, 0, 0]
    assert list(kv.pool.free_queue) == [5, 2, 4]
    assert kv.num_pinned_blocks == 3


def test_unpin_makes_blocks_evictable_tail_first(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    tokens = [*A, 9, 10, 11, 12, 13]
    assert turn(kv, "a", tokens) == [0, 1, 2, 3]
    assert kv.pin("p", "a", 1.0) == (0, 1, 2)
    kv.free("a")
    clock.tick()
    assert kv.unpin("p") == 3
    kv.check_integrity()
    assert repr(kv.pool.eviction) == "LRUEviction(order=[2, 1, 0])"
    assert kv.match(tokens).block_ids == (0, 1, 2)
    assert [kv.allocate(s, 4) for s in ("x", "y", "z")] == [[3], [2], [1]]
    kv.check_integrity()
    assert kv.match(tokens).block_ids == (0,)


def test_pin_exclusive_blocks_with_blocks_shared_by_sequences_and_pins() -> None:
    kv = KVCacheManager(num_blocks=6, block_size=4)
    assert turn(kv, "a", [*A, 0]) == [0, 1, 2]
    kv.pin("p", "a", 1.0)
    kv.free("a")
    assert kv.pin_exclusive_blocks("p") == 2

    assert turn(kv, "b", [*A[:4], 20, 21, 22, 23, 24]) == [0, 3, 4]
    assert kv.pin_exclusive_blocks("p") == 1
    assert kv.pin("q", "b", 1.0) == (0, 3)
    kv.check_integrity()
    assert (kv.pin_exclusive_blocks("p"), kv.pin_exclusive_blocks("q"), kv.num_pinned_blocks) == (1, 0, 3)
    kv.free("b")
    kv.check_integrity()
    assert refs(kv)[:4] == [2, 1, 0, 1]
    assert (kv.pin_exclusive_blocks("p"), kv.pin_exclusive_blocks("q")) == (1, 1)
    assert kv.unpin("p") == 1
    kv.check_integrity()
    assert kv.pin_exclusive_blocks("q") == 2
    assert kv.num_pinned_blocks == 2


def test_only_indexed_blocks_are_pinned() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    kv.allocate("a", 9)
    kv.cache_blocks("a", [*A, 0], 6)
    assert kv.pin("p", "a", 1.0) == (0,)
    kv.check_integrity()

    off = KVCacheManager(num_blocks=4, block_size=4, enable_prefix_caching=False)
    off.allocate("a", 9)
    off.cache_blocks("a", [*A, 0], 9)
    assert off.pin("p", "a", 1.0) == ()
    off.free("a")
    off.check_integrity()
    assert (off.unpin("p"), off.num_free_blocks) == (0, 4)
