"""check_integrity() names each broken rule of pins, the CPU tier and pending copies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tether.kvcache import KVCacheIntegrityError, KVCacheManager

A = [1, 2, 3, 4, 5, 6, 7, 8]


def setup_manager() -> KVCacheManager:
    """GPU blocks 0, 1 pinned by "p"; "q" parked on CPU blocks 0, 1 (copies taken); nothing pending."""
    kv = KVCacheManager(num_blocks=6, block_size=4, num_cpu_blocks=3)
    for pin_id, tokens in (("p", [*A, 0]), ("q", [9, 9, 9, 9, *A, 0])):
        kv.allocate(pin_id, len(tokens), kv.match(tokens))
        kv.cache_blocks(pin_id, tokens, len(tokens))
        kv.pin(pin_id, pin_id, 1.0)
        kv.free(pin_id)
    kv.park("q")
    kv.take_pending_copies()
    kv.check_integrity()
    assert (kv.pins["p"].block_ids, kv.pins["q"].cpu_block_ids) == ((0, 1), (0, 1, 2))
    return kv


def corrupt_pin(kv: KVCacheManager, pin_id: str, **changes: object) -> None:
    record = kv._pins._pins[pin_id]
    record.info = replace(record.info, **changes)


def test_detects_a_pin_ref_count_mismatch() -> None:
    kv = setup_manager()
    kv.pool.blocks[1].ref_count = 2
    with pytest.raises(KVCacheIntegrityError, match="block 1: ref_count is 2 but owners hold 1 references"):
        kv.check_integrity()


def test_detects_a_parked_pin_holding_gpu_blocks_and_the_reverse() -> None:
    kv = setup_manager()
    corrupt_pin(kv, "q", block_ids=(3,))
    with pytest.raises(KVCacheIntegrityError, match="pin 'q' is parked but holds blocks \\[3\\]"):
        kv.check_integrity()
    kv = setup_manager()
    corrupt_pin(kv, "p", cpu_block_ids=(2,))
    with pytest.raises(KVCacheIntegrityError, match="pin 'p' is not parked but holds blocks \\[2\\]"):
        kv.check_integrity()


def test_detects_a_pin_on_missing_blocks() -> None:
    kv = setup_manager()
    corrupt_pin(kv, "p", block_ids=(0, 9))
    with pytest.raises(KVCacheIntegrityError, match="pin 'p' holds GPU blocks \\[9\\] that do not exist"):
        kv.check_integrity()
    kv = setup_manager()
    corrupt_pin(kv, "q", cpu_block_ids=(0, 1, 1))
    with pytest.raises(
        KVCacheIntegrityError, match="pin 'q' holds CPU blocks \\[0, 1, 1\\] for 3 distinct keys"
    ):
        kv.check_integrity()


def test_detects_cpu_ref_counts_that_are_not_parked_pins() -> None:
    kv = setup_manager()
    kv.cpu_tier.block(2).ref_count = 0
    with pytest.raises(KVCacheIntegrityError, match="CPU tier: block 2: ref_count is 0 but owners hold 1"):
        kv.check_integrity()


def test_detects_a_lost_cpu_block_and_a_bad_cpu_index_entry() -> None:
    kv = setup_manager()
    kv.unpin("q")
    assert kv.cpu_tier.pool is not None
    kv.cpu_tier.pool.eviction.remove(0)
    with pytest.raises(
        KVCacheIntegrityError, match="CPU tier: block 0: has ref_count 0 and a hash but is not"
    ):
        kv.check_integrity()
    kv = setup_manager()
    block_hash = kv.cpu_tier.block(0).block_hash
    assert kv.cpu_tier.pool is not None
    kv.cpu_tier.pool.index._by_hash[block_hash] = 2
    with pytest.raises(KVCacheIntegrityError, match="CPU tier: block 2: is indexed under"):
        kv.check_integrity()


def test_detects_pending_copies_of_missing_blocks_or_in_a_broken_order() -> None:
    kv = setup_manager()
    kv.cpu_tier.queue.queue_to_cpu(0, 7)
    with pytest.raises(
        KVCacheIntegrityError, match="pending to_cpu copy BlockCopy\\(src=0, dst=7\\) names a"
    ):
        kv.check_integrity()
    kv = setup_manager()
    kv.cpu_tier.incref_all([0])
    kv.cpu_tier.queue.queue_to_gpu(0, 4)
    kv.check_integrity()
    kv.cpu_tier.queue.queue_to_cpu(4, 2)
    with pytest.raises(KVCacheIntegrityError, match="reads GPU block 4 after a pending to_gpu copy fills it"):
        kv.check_integrity()
    kv = setup_manager()
    kv.cpu_tier.incref_all([0])
    kv.cpu_tier.queue.queue_to_gpu(0, 4)
    kv.cpu_tier.queue.queue_to_cpu(3, 0)
    with pytest.raises(
        KVCacheIntegrityError, match="overwrites CPU block 0 before a pending to_gpu copy reads"
    ):
        kv.check_integrity()
