"""The structures kept for speed equal what they stand for, recomputed from scratch, through random use.

- ``PrefixIndex.lookup_all`` is ``lookup`` per key; ``BlockPool.incref_all``/``decref_all`` are the single
  calls in order; ``BlockPool.dropped_since`` lists exactly the hashes dropped since an epoch.
- ``Block.key`` is built once per hash and follows ``set_hash``/``clear_hash``.
- ``PinTable`` keeps each pin's info (in pin order) and the GPU pin reference counts; ``check_integrity``
  compares both with values recomputed from the pins and names a kept view that went wrong.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tether.kvcache import BlockKey, BlockPool, KVCacheIntegrityError, KVCacheManager, LRUEviction, hash_block
from tether.kvcache.block import Block

BS = 4


def filled_pool(seed: int) -> tuple[BlockPool, list[BlockKey]]:
    """A pool with some blocks hashed (in use or evictable) and some free, and the keys it was given."""
    rng = random.Random(seed)
    pool = BlockPool(16, LRUEviction())
    keys = []
    parent = None
    for _ in range(12):
        block_id = pool.allocate()
        tokens = tuple(rng.randrange(5) for _ in range(BS))
        key = BlockKey(hash_block(parent, tokens), parent, tokens)
        pool.cache_block(block_id, *key)
        keys.append(key)
        parent = key.block_hash
    pool.decref_all([b for b in range(12) if rng.random() < 0.6], now=1.0)
    return pool, keys


@pytest.mark.parametrize("seed", range(5))
def test_lookup_all_is_lookup_per_key(seed: int) -> None:
    pool, keys = filled_pool(seed)
    rng = random.Random(seed)
    wrong_tokens = [BlockKey(k.block_hash, k.parent_hash, (9,) * BS) for k in keys[:3]]
    wrong_parent = [BlockKey(k.block_hash, 12345, k.token_ids) for k in keys[3:6]]
    unknown = [BlockKey(hash_block(None, (7, 7, 7, i)), None, (7, 7, 7, i)) for i in range(3)]
    probe = keys + wrong_tokens + wrong_parent + unknown
    rng.shuffle(probe)
    assert pool.index.lookup_all(probe) == [pool.lookup(*key) for key in probe]
    assert pool.index.lookup_all(keys) == list(range(12))
    assert pool.index.lookup_all([]) == []


@pytest.mark.parametrize("seed", range(5))
def test_batched_incref_and_decref_equal_single_calls_in_order(seed: int) -> None:
    rng = random.Random(seed)
    batched, _ = filled_pool(seed)
    single, _ = filled_pool(seed)
    for step in range(40):
        in_use = [b.block_id for b in batched.blocks if b.ref_count > 0]
        cached = [b.block_id for b in batched.blocks if b.ref_count == 0 and b.block_hash is not None]
        if rng.random() < 0.5 and in_use:
            ids = rng.sample(in_use, rng.randint(1, len(in_use)))
            batched.decref_all(ids, now=float(step))
            for block_id in ids:
                single.decref(block_id, now=float(step))
        elif cached:
            ids = rng.sample(cached, rng.randint(1, len(cached)))
            batched.incref_all(ids)
            for block_id in ids:
                single.incref(block_id)
        assert [b.ref_count for b in batched.blocks] == [b.ref_count for b in single.blocks]
        assert list(batched.free_queue) == list(single.free_queue)
        assert repr(batched.eviction) == repr(single.eviction)


def test_batched_incref_and_decref_keep_their_errors() -> None:
    pool, _ = filled_pool(0)
    free = pool.free_queue[0]
    with pytest.raises(Exception, match=f"block {free} is in the free queue"):
        pool.incref_all([free])
    with pytest.raises(Exception, match=f"block {free} has ref_count 0"):
        pool.decref_all([free], now=0.0)
    with pytest.raises(Exception, match="block 99 does not exist"):
        pool.incref_all([99])
    with pytest.raises(Exception, match="block -1 does not exist"):
        pool.decref_all([-1], now=0.0)


def test_dropped_since_lists_the_hashes_dropped_after_an_epoch() -> None:
    pool, keys = filled_pool(1)
    start = pool.epoch
    assert list(pool.dropped_since(start)) == []
    evictable = len(pool.eviction)
    order = [int(b) for b in repr(pool.eviction).split("[")[1].rstrip("])").split(", ") if b]
    expected = [pool.blocks[b].block_hash for b in order]
    pool.reset_prefix_cache()
    assert pool.epoch == start + evictable
    for n in range(evictable + 1):
        assert sorted(pool.dropped_since(pool.epoch - n)) == sorted(expected[evictable - n :])
        assert list(pool.dropped_since(pool.epoch - n)) == expected[evictable - n :][::-1]  # newest first
    assert pool.dropped_since(pool.epoch + 1) is None
    assert pool.dropped_since(-1) is None


def test_block_key_is_kept_per_hash() -> None:
    block = Block(block_id=3)
    assert block.key is None
    block.set_hash(11, None, (1, 2))
    key = block.key
    assert key == BlockKey(11, None, (1, 2)) and block.key is key
    block.clear_hash()
    assert block.key is None
    block.set_hash(12, 11, (3, 4))
    assert block.key == BlockKey(12, 11, (3, 4))
    block.block_hash, block.parent_hash, block.token_ids = 13, 12, (5, 6)  # fields set directly
    block._key = None
    assert block.key == BlockKey(13, 12, (5, 6))


def recomputed_views(kv: KVCacheManager) -> tuple[dict, int]:
    pins = kv._pins
    infos = {pin_id: pin.info for pin_id, pin in pins._pins.items()}
    gpu_refs = Counter(b for pin in pins._pins.values() for b in pin.info.block_ids)
    return infos, len(gpu_refs)


@pytest.mark.parametrize("seed", range(8))
def test_kept_pin_views_equal_recomputed_ones_through_random_use(seed: int) -> None:
    rng = random.Random(seed)
    now = [0.0]
    kv = KVCacheManager(24, BS, clock=lambda: now[0], num_cpu_blocks=16)
    shared = [rng.randrange(3) for _ in range(2 * BS)]
    live: list[str] = []
    for step in range(150):
        now[0] += 1.0
        action = rng.random()
        pin_ids = list(kv.pins)
        if action < 0.35:
            seq = f"s{step}"
            tokens = shared + [rng.randrange(3) for _ in range(rng.randint(1, 3 * BS))]
            prefix = kv.match(tokens)
            if kv.can_allocate(seq, len(tokens), prefix):
                kv.allocate(seq, len(tokens), prefix)
                kv.cache_blocks(seq, tokens, len(tokens))
                live.append(seq)
        elif action < 0.55 and live:
            seq = live.pop(rng.randrange(len(live)))
            kv.pin(f"p{rng.randrange(4)}", seq, expires_at=now[0] + rng.randint(1, 20))
            kv.free(seq)
        elif action < 0.65 and pin_ids:
            pin_id = rng.choice(pin_ids)
            if kv.can_park(pin_id):
                kv.park(pin_id)
        elif action < 0.75 and pin_ids:
            kv.prefetch(rng.choice(pin_ids))
        elif action < 0.82 and pin_ids:
            kv.set_pin_expiry(rng.choice(pin_ids), now[0] + rng.randint(-5, 5))
        elif action < 0.9 and pin_ids:
            kv.unpin(rng.choice(pin_ids))
        else:
            for pin_id in kv.expired_pins(now[0]):
                kv.unpin(pin_id)
        kv.take_pending_copies()
        infos, num_pinned = recomputed_views(kv)
        assert kv.pins == infos and list(kv.pins) == list(infos)
        assert kv.num_pinned_blocks == num_pinned
        kv.check_integrity()


def test_check_integrity_names_a_kept_pin_view_that_went_wrong() -> None:
    kv = KVCacheManager(8, BS)
    tokens = list(range(2 * BS + 1))
    kv.allocate("s", len(tokens))
    kv.cache_blocks("s", tokens, len(tokens))
    kv.pin("p", "s", expires_at=5.0)
    kv.check_integrity()
    kv._pins._gpu_refs[7] += 1
    with pytest.raises(KVCacheIntegrityError, match="kept GPU pin references"):
        kv.check_integrity()
    del kv._pins._gpu_refs[7]
    kv.check_integrity()
    kv._pins._infos["ghost"] = kv._pins._infos["p"]
    with pytest.raises(KVCacheIntegrityError, match="kept pin infos"):
        kv.check_integrity()
