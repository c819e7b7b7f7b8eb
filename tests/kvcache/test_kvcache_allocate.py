"""Block tables without prefix reuse: exact block ids, growth, free order, atomic failure, bad calls."""

from __future__ import annotations

import pytest

from tether.kvcache import InvalidKVRequestError, KVCacheManager, OutOfBlocksError, UnknownSequenceError


def test_allocate_and_free_exact_ids(clock) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4, clock=clock)
    kv.check_integrity()
    assert kv.allocate("a", 5) == [0, 1]
    kv.check_integrity()
    assert kv.allocate("a", 8) == [0, 1]
    assert kv.allocate("a", 9) == [0, 1, 2]
    kv.check_integrity()
    assert kv.allocate("b", 4) == [3]
    kv.check_integrity()
    assert (kv.num_free_blocks, kv.num_used_blocks, kv.num_cached_blocks, kv.usage) == (0, 4, 0, 1.0)
    assert kv.num_tokens_capacity("a") == 12

    kv.free("a")
    kv.check_integrity()
    assert not kv.has_seq("a")
    assert list(kv.pool.free_queue) == [2, 1, 0]
    assert kv.num_free_blocks == 3
    assert kv.usage == 0.25

    assert kv.allocate("c", 12) == [2, 1, 0]
    kv.check_integrity()
    kv.free("b")
    kv.free("c")
    kv.check_integrity()
    assert list(kv.pool.free_queue) == [3, 0, 1, 2]
    assert kv.num_free_blocks == 4


def test_num_blocks_needed_and_can_allocate_are_pure(state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    kv.allocate("a", 6)
    before = state(kv)
    assert kv.num_blocks_needed("a", 6) == 0
    assert kv.num_blocks_needed("a", 9) == 1
    assert kv.num_blocks_needed("a", 3) == 0
    assert kv.num_blocks_needed("new", 16) == 4
    assert kv.can_allocate("a", 16)
    assert not kv.can_allocate("a", 17)
    assert not kv.can_allocate("new", 16)
    assert kv.can_allocate("new", 8)
    assert state(kv) == before
    kv.check_integrity()


def test_out_of_blocks_changes_nothing(state) -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    kv.allocate("a", 8)
    kv.allocate("b", 4)
    before = state(kv)
    with pytest.raises(OutOfBlocksError, match="'c' needs 2 new blocks") as info:
        kv.allocate("c", 5)
    assert (info.value.seq_id, info.value.needed, info.value.available) == ("c", 2, 1)
    assert not kv.has_seq("c")
    with pytest.raises(OutOfBlocksError, match="'a'"):
        kv.allocate("a", 16)
    assert kv.block_table("a") == [0, 1]
    assert state(kv) == before
    kv.check_integrity()


def test_zero_tokens_registers_an_empty_sequence() -> None:
    kv = KVCacheManager(num_blocks=2, block_size=4)
    assert kv.allocate(7, 0) == []
    assert kv.has_seq(7)
    assert kv.seq_ids == (7,)
    assert kv.num_tokens_capacity(7) == 0
    assert kv.allocate(7, 1) == [0]
    kv.check_integrity()


def test_block_table_is_a_copy() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    table = kv.allocate("a", 4)
    table.append(3)
    kv.block_table("a").append(2)
    assert kv.block_table("a") == [0]
    kv.check_integrity()


def test_unknown_sequence_errors_name_the_sequence() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    for call in (
        lambda: kv.free("ghost"),
        lambda: kv.block_table("ghost"),
        lambda: kv.num_tokens_capacity("ghost"),
        lambda: kv.cache_blocks("ghost", [1, 2, 3, 4], 4),
    ):
        with pytest.raises(UnknownSequenceError, match="'ghost'"):
            call()
    kv.allocate("a", 4)
    kv.free("a")
    with pytest.raises(UnknownSequenceError, match="'a'"):
        kv.free("a")
    kv.check_integrity()


def test_invalid_requests() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=4)
    with pytest.raises(InvalidKVRequestError, match="'a'.*num_tokens"):
        kv.allocate("a", -1)
    kv.allocate("a", 4)
    with pytest.raises(InvalidKVRequestError, match="'a' is already allocated"):
        kv.allocate("a", 8, kv.match([1, 2, 3]))
    with pytest.raises(InvalidKVRequestError, match="num_computed_tokens=5"):
        kv.cache_blocks("a", [1, 2, 3, 4, 5], 5)
    with pytest.raises(InvalidKVRequestError, match="num_computed_tokens=4"):
        kv.cache_blocks("a", [1, 2, 3], 4)
    with pytest.raises(InvalidKVRequestError, match="block_size"):
        KVCacheManager(num_blocks=4, block_size=0)
    with pytest.raises(InvalidKVRequestError, match="num_blocks=0"):
        KVCacheManager(num_blocks=0, block_size=4)
    assert kv.block_table("a") == [0]
    kv.check_integrity()
