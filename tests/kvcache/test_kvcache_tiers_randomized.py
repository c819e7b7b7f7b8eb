"""Seeded random programs over both tiers, against check_integrity() and a model of every block's contents.

The model keeps, for each GPU and CPU block, the token prefix whose KV it holds. Pending copies are applied
the way the engine runs them (every to_cpu, then every to_gpu) before each forward pass. After every step,
with the pending copies applied to a scratch copy of the model, every indexed block on either tier, every
computed block of a running sequence and every block a match hands out must hold exactly its prefix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tether.kvcache import (
    KVCacheManager,
    OutOfBlocksError,
    OutOfCpuBlocksError,
    PendingCopies,
    PrefixMatch,
    hash_block,
)

BLOCK_SIZE = 4
NUM_BLOCKS = 10
STEPS = 600
BASES = ([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 7, 7, 7, 7], [5, 5, 5, 5, 5], [])
OPS = {
    "new": 6,
    "compute": 6,
    "decode": 3,
    "free": 4,
    "unpin": 1,
    "park": 3,
    "prefetch": 3,
    "expire": 1,
    "take": 2,
    "match": 2,
    "reset": 0.1,
}

Contents = dict[int, tuple[int, ...]]


@dataclass
class Running:
    tokens: list[int]
    num_computed: int


class TierWorkload:
    def __init__(self, seed: int, num_cpu_blocks: int, offload: bool, state: Callable[[KVCacheManager], Any]):
        self.state = state
        self.rng = random.Random(seed)
        self.now = 0.0
        self.kv = KVCacheManager(
            NUM_BLOCKS,
            BLOCK_SIZE,
            clock=lambda: self.now,
            num_cpu_blocks=num_cpu_blocks,
            offload_on_evict=offload,
        )
        self.gpu: Contents = {}
        self.cpu: Contents = {}
        self.prefix_of: dict[int, tuple[int, ...]] = {}
        self.running: dict[int, Running] = {}
        self.programs: dict[str, list[int]] = {}
        self.next_id = 0
        self.counts = dict.fromkeys(("parked", "prefetched", "continued", "extended"), 0)
        self.earlier: list[tuple[list[int], PrefixMatch]] = []  # recent (prompt, match) pairs, for since=

    def step(self) -> None:
        op = self.rng.choices(list(OPS), list(OPS.values()))[0]
        if op in ("compute", "decode", "free") and not self.running:
            op = "new"
        if op in ("unpin", "park", "prefetch") and not self.programs:
            op = "take"
        getattr(self, op)()
        self.kv.check_integrity()
        self.check_contents()
        assert self.kv.num_free_blocks + self.kv.num_used_blocks == NUM_BLOCKS

    def pending_contents(self) -> tuple[Contents, Contents]:
        """The model once the queued copies have run, in the documented order."""
        gpu, cpu = dict(self.gpu), dict(self.cpu)
        queue = self.kv.cpu_tier.queue
        apply_copies(gpu, cpu, PendingCopies(queue.to_cpu, queue.to_gpu))
        return gpu, cpu

    def check_contents(self) -> None:
        gpu, cpu = self.pending_contents()
        for block in self.kv.pool.blocks:
            if block.block_hash is not None:
                assert gpu.get(block.block_id) == self.prefix_of[block.block_hash], (
                    f"GPU block {block.block_id}"
                )
        if self.kv.cpu_tier.pool is not None:
            for block in self.kv.cpu_tier.pool.blocks:
                if block.block_hash is not None:
                    assert cpu.get(block.block_id) == self.prefix_of[block.block_hash], (
                        f"CPU block {block.block_id}"
                    )
        for seq_id, seq in self.running.items():
            table = self.kv.block_table(seq_id)
            for i in range(seq.num_computed // BLOCK_SIZE):
                assert gpu.get(table[i]) == tuple(seq.tokens[: (i + 1) * BLOCK_SIZE]), (
                    f"seq {seq_id} block {i}"
                )

    def prompt(self) -> tuple[list[int], str | None]:
        if self.programs and self.rng.random() < 0.7:
            pin_id = self.rng.choice(sorted(self.programs))
            tail = [self.rng.randint(0, 2) for _ in range(self.rng.randint(1, 6))]
            return self.programs[pin_id] + tail, pin_id
        base = self.rng.choice(BASES)
        tail = [self.rng.randint(0, 2) for _ in range(self.rng.randint(1, 9))]
        return base[: self.rng.randint(0, len(base))] + tail, None

    def check_match(self, prompt: list[int]) -> PrefixMatch:
        """A match of ``prompt``, from scratch or extending an earlier match of a prefix; checked either way.

        An extension of a match with no CPU blocks equals the match from scratch; one that continues in the
        CPU tier may keep CPU blocks where the GPU got the same hashes since (still exact contents).
        """
        found = self.kv.match(prompt)
        self.check_contents_of(found, prompt)
        for earlier_prompt, earlier in self.earlier:
            if prompt[: len(earlier_prompt)] == earlier_prompt:
                extended = self.kv.match(prompt, since=earlier)
                self.check_contents_of(extended, prompt)
                if not earlier.cpu_block_ids:
                    assert extended == found
                self.counts["extended"] += earlier.num_blocks > 0
                found = extended
        self.earlier = [*self.earlier[-7:], (prompt, found)]
        return found

    def check_contents_of(self, found: PrefixMatch, prompt: list[int]) -> None:
        assert found.num_tokens == found.num_blocks * BLOCK_SIZE < max(len(prompt), 1)
        gpu, cpu = self.pending_contents()
        held = [gpu.get(b) for b in found.block_ids] + [cpu.get(b) for b in found.cpu_block_ids]
        assert held == [tuple(prompt[: (i + 1) * BLOCK_SIZE]) for i in range(found.num_blocks)]

    def new(self) -> None:
        prompt, pin_id = self.prompt()
        if pin_id is not None and self.rng.random() < 0.3:
            self.kv.prefetch(pin_id)
        seq_id, self.next_id = self.next_id, self.next_id + 1
        prefix = self.check_match(prompt)
        fits = self.kv.can_allocate(seq_id, len(prompt), prefix)
        before = self.state(self.kv)
        try:
            table = self.kv.allocate(seq_id, len(prompt), prefix)
        except OutOfBlocksError:
            assert not fits and not self.kv.has_seq(seq_id)
            assert self.state(self.kv) == before
            return
        assert fits and len(table) == math.ceil(len(prompt) / BLOCK_SIZE)
        assert tuple(table[: len(prefix.block_ids)]) == prefix.block_ids
        self.running[seq_id] = Running(prompt, prefix.num_tokens)
        if pin_id is not None:
            self.counts["continued"] += 1
            self.kv.unpin(pin_id)
            del self.programs[pin_id]

    def flush(self) -> None:
        apply_copies(self.gpu, self.cpu, self.kv.take_pending_copies())

    def compute(self) -> None:
        seq_id = self.rng.choice(sorted(self.running))
        seq = self.running[seq_id]
        end = self.rng.randint(seq.num_computed, len(seq.tokens))
        self.flush()
        table = self.kv.block_table(seq_id)
        for i in range(seq.num_computed // BLOCK_SIZE, math.ceil(end / BLOCK_SIZE)):
            block = self.kv.pool.blocks[table[i]]
            assert block.ref_count == 1 and block.block_hash is None, f"block {table[i]} written while shared"
            self.gpu[table[i]] = tuple(seq.tokens[: min(end, (i + 1) * BLOCK_SIZE)])
        seq.num_computed = end
        self.kv.cache_blocks(seq_id, seq.tokens, end)
        parent_hash = None
        for i in range(end // BLOCK_SIZE):
            parent_hash = hash_block(parent_hash, tuple(seq.tokens[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE]))
            assert self.prefix_of.setdefault(parent_hash, tuple(seq.tokens[: (i + 1) * BLOCK_SIZE])) == tuple(
                seq.tokens[: (i + 1) * BLOCK_SIZE]
            )

    def decode(self) -> None:
        seq_id = self.rng.choice(sorted(self.running))
        seq = self.running[seq_id]
        if seq.num_computed < len(seq.tokens):
            return
        fits = self.kv.can_allocate(seq_id, len(seq.tokens) + 1)
        try:
            self.kv.allocate(seq_id, len(seq.tokens) + 1)
        except OutOfBlocksError:
            assert not fits
            return
        assert fits
        seq.tokens.append(self.rng.randint(0, 2))

    def free(self) -> None:
        seq_id = self.rng.choice(sorted(self.running))
        seq = self.running.pop(seq_id)
        if self.rng.random() < 0.6:
            replace = self.programs and self.rng.random() < 0.2
            pin_id = self.rng.choice(sorted(self.programs)) if replace else f"p{seq_id}"
            self.kv.pin(pin_id, seq_id, self.now + self.rng.uniform(1.0, 20.0))
            self.programs[pin_id] = list(seq.tokens)
        self.kv.free(seq_id)

    def unpin(self) -> None:
        pin_id = self.rng.choice(sorted(self.programs))
        self.kv.unpin(pin_id)
        del self.programs[pin_id]

    def park(self) -> None:
        pin_id = self.rng.choice(sorted(self.programs))
        fits = self.kv.can_park(pin_id)
        before = self.state(self.kv)
        try:
            self.kv.park(pin_id)
        except OutOfCpuBlocksError:
            assert not fits and self.state(self.kv) == before
            return
        assert fits and self.kv.pins[pin_id].parked
        self.counts["parked"] += 1

    def prefetch(self) -> None:
        pin_id = self.rng.choice(sorted(self.programs))
        fits = self.kv.can_prefetch(pin_id)
        before = self.state(self.kv)
        parked = self.kv.pins[pin_id].parked
        assert self.kv.prefetch(pin_id) is fits
        if not fits:
            assert self.state(self.kv) == before
        self.counts["prefetched"] += fits and parked

    def expire(self) -> None:
        self.now += self.rng.uniform(0.0, 4.0)
        expired = self.kv.expired_pins(self.now)
        deadlines = [self.kv.pins[pin_id].expires_at for pin_id in expired]
        assert deadlines == sorted(deadlines) and all(d <= self.now for d in deadlines)
        for pin_id in expired:
            self.kv.unpin(pin_id)
            del self.programs[pin_id]

    def take(self) -> None:
        self.flush()

    def match(self) -> None:
        before = self.state(self.kv)
        self.check_match(self.prompt()[0])
        assert self.state(self.kv) == before

    def reset(self) -> None:
        self.kv.reset_prefix_cache()


def apply_copies(gpu: Contents, cpu: Contents, pending: PendingCopies) -> None:
    for copy in pending.to_cpu:
        cpu[copy.dst] = gpu[copy.src]
    for copy in pending.to_gpu:
        gpu[copy.dst] = cpu[copy.src]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("num_cpu_blocks", "offload"), [(8, True), (8, False), (0, False)])
def test_random_programs_keep_invariants_and_contents(
    seed: int, num_cpu_blocks: int, offload: bool, state
) -> None:
    work = TierWorkload(seed, num_cpu_blocks, offload, state)
    for _ in range(STEPS):
        work.step()
    work.flush()
    for seq_id in sorted(work.running):
        work.kv.free(seq_id)
    for pin_id in sorted(work.programs):
        work.kv.unpin(pin_id)
    work.kv.check_integrity()
    assert (work.kv.num_used_blocks, work.kv.num_free_cpu_blocks, work.kv.pins) == (0, num_cpu_blocks, {})
    stats = work.kv.stats()
    assert work.counts["continued"] > 0 and work.counts["extended"] > 0 and stats.gpu_hit_blocks > 0
    if num_cpu_blocks:
        assert work.counts["parked"] > 0 and work.counts["prefetched"] > 0
        assert stats.blocks_to_cpu > 0 and stats.blocks_to_gpu > 0 and stats.cpu_hit_blocks > 0
    else:
        assert stats == type(stats)(gpu_evictions=stats.gpu_evictions, gpu_hit_blocks=stats.gpu_hit_blocks)
