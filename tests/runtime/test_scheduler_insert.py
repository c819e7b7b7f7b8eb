"""``Scheduler._insert`` finds the place a full list of priorities would, computing O(log n) of them."""

from __future__ import annotations

import bisect
import random

import pytest

from tether.kvcache import KVCacheManager
from tether.runtime.engine.scheduler import Scheduler, SchedulerConfig


class CountingPriority:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def priority(self, seq) -> tuple:
        self.calls += 1
        return seq.key


class Item:
    def __init__(self, key: tuple) -> None:
        self.key = key


@pytest.mark.parametrize("seed", range(5))
def test_insert_finds_the_place_of_a_full_priority_list_with_few_priority_calls(seed: int) -> None:
    rng = random.Random(seed)
    admission = CountingPriority()
    scheduler = Scheduler(SchedulerConfig(), KVCacheManager(4, 4), admission)
    queue: list = []
    expected: list = []
    for _ in range(200):
        item = Item((rng.randrange(10), rng.random()))
        expected.insert(bisect.bisect_right([s.key for s in expected], item.key), item)
        admission.calls = 0
        scheduler._insert(queue, item)
        assert admission.calls <= 2 + len(queue).bit_length()
        assert queue == expected
