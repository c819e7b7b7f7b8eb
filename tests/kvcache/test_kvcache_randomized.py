"""Seeded random workloads against check_integrity() and a model of what each block's KV holds.

The model records, for each block, the token prefix whose KV was written into it. A prefix hit must hand
out blocks that hold exactly the requested prefix, and no block may be written while another owner shares it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tether.kvcache import KVCacheManager, OutOfBlocksError

BLOCK_SIZE = 4
NUM_BLOCKS = 12
BASES = ([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 7, 7, 7, 7], [5, 5, 5, 5, 5], [])


@dataclass
class Running:
    tokens: list[int]
    num_computed: int


class Workload:
    def __init__(self, seed: int, enable_prefix_caching: bool, state: Callable[[KVCacheManager], Any]):
        self.state = state
        self.rng = random.Random(seed)
        self.kv = KVCacheManager(NUM_BLOCKS, BLOCK_SIZE, enable_prefix_caching=enable_prefix_caching)
        self.running: dict[int, Running] = {}
        self.written: dict[int, tuple[int, ...]] = {}
        self.next_id = 0
        self.hits = 0

    def prompt(self) -> list[int]:
        base = self.rng.choice(BASES)
        tail = [self.rng.randint(0, 2) for _ in range(self.rng.randint(1, 9))]
        return base[: self.rng.randint(0, len(base))] + tail

    def step(self) -> None:
        op = self.rng.choices(["new", "compute", "decode", "free", "match", "reset"], [5, 5, 4, 3, 2, 0.2])[0]
        if op == "new" or not self.running and op in ("compute", "decode", "free"):
            self.new()
        elif op == "match":
            before = self.state(self.kv)
            self.check_match(self.prompt())
            assert self.state(self.kv) == before
        elif op == "reset":
            self.kv.reset_prefix_cache()
        else:
            seq_id = self.rng.choice(sorted(self.running))
            {"compute": self.compute, "decode": self.decode, "free": self.free}[op](seq_id)
        self.kv.check_integrity()
        assert self.kv.num_free_blocks + self.kv.num_used_blocks == NUM_BLOCKS

    def check_match(self, prompt: list[int]) -> tuple[int, ...]:
        match = self.kv.match(prompt)
        assert match.num_tokens == len(match.block_ids) * BLOCK_SIZE < max(len(prompt), 1)
        for i, block_id in enumerate(match.block_ids):
            assert self.written[block_id] == tuple(prompt[: (i + 1) * BLOCK_SIZE])
        return match.block_ids

    def new(self) -> None:
        seq_id, self.next_id = self.next_id, self.next_id + 1
        prompt = self.prompt()
        self.check_match(prompt)
        prefix = self.kv.match(prompt)
        fits = self.kv.can_allocate(seq_id, len(prompt), prefix)
        try:
            table = self.kv.allocate(seq_id, len(prompt), prefix)
        except OutOfBlocksError:
            assert not fits and not self.kv.has_seq(seq_id)
            return
        assert fits
        assert len(table) == math.ceil(len(prompt) / BLOCK_SIZE)
        assert tuple(table[: len(prefix.block_ids)]) == prefix.block_ids
        self.hits += len(prefix.block_ids)
        self.running[seq_id] = Running(prompt, prefix.num_tokens)

    def compute(self, seq_id: int) -> None:
        seq = self.running[seq_id]
        end = self.rng.randint(seq.num_computed, len(seq.tokens))
        table = self.kv.block_table(seq_id)
        for i in range(seq.num_computed // BLOCK_SIZE, math.ceil(end / BLOCK_SIZE)):
            assert self.kv.pool.blocks[table[i]].ref_count == 1, f"block {table[i]} written while shared"
            assert self.kv.pool.blocks[table[i]].block_hash is None, f"cached block {table[i]} rewritten"
            self.written[table[i]] = tuple(seq.tokens[: min(end, (i + 1) * BLOCK_SIZE)])
        seq.num_computed = end
        self.kv.cache_blocks(seq_id, seq.tokens, end)

    def decode(self, seq_id: int) -> None:
        seq = self.running[seq_id]
        if seq.num_computed < len(seq.tokens):
            self.compute(seq_id)
            return
        fits = self.kv.can_allocate(seq_id, len(seq.tokens) + 1)
        try:
            self.kv.allocate(seq_id, len(seq.tokens) + 1)
        except OutOfBlocksError:
            assert not fits
            self.free(seq_id)
            return
        assert fits
        seq.tokens.append(self.rng.randint(0, 2))

    def free(self, seq_id: int) -> None:
        self.kv.free(seq_id)
        del self.running[seq_id]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("enable_prefix_caching", [True, False])
def test_random_workload_keeps_invariants(seed: int, enable_prefix_caching: bool, state) -> None:
    workload = Workload(seed, enable_prefix_caching, state)
    for _ in range(400):
        workload.step()
    for seq_id in sorted(workload.running):
        workload.free(seq_id)
    workload.kv.check_integrity()
    assert workload.kv.num_used_blocks == 0
    assert (workload.hits > 0) == enable_prefix_caching
