from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tether.kvcache import BlockPool, KVCacheManager


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


def pool_state(pool: BlockPool | None) -> tuple[Any, ...]:
    if pool is None:
        return ()
    blocks = tuple((b.ref_count, b.block_hash, b.parent_hash, b.token_ids) for b in pool.blocks)
    return blocks, tuple(pool.free_queue), repr(pool.eviction), tuple(sorted(pool.index.items()))


def kv_state(kv: KVCacheManager) -> tuple[Any, ...]:
    """Everything observable about the manager's state, to assert that a call changed nothing."""
    tables = tuple((seq_id, tuple(kv.block_table(seq_id))) for seq_id in kv.seq_ids)
    queue = kv.cpu_tier.queue
    copies = (queue.to_cpu, queue.to_gpu)
    return (
        pool_state(kv.pool),
        tables,
        pool_state(kv.cpu_tier.pool),
        tuple(kv.pins.items()),
        copies,
        kv.stats(),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state() -> Callable[[KVCacheManager], tuple[Any, ...]]:
    return kv_state
