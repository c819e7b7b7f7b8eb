"""The CPU tier: host blocks with their own prefix index, references and eviction order (bookkeeping only).

A second ``BlockPool`` of ``num_cpu_blocks`` blocks. CPU blocks are written only by to_cpu copies and read
only by to_gpu copies; the tier queues both (see ``tether.kvcache.transfers`` for the order the engine runs them).

    CPU block state   ref 0, no hash: free queue   ref 0, hashed: evictable (LRU)   ref > 0: held
    references        one per parked pin holding the block + one per pending to_gpu copy reading it
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from tether.kvcache.block import Block, BlockKey
from tether.kvcache.block_pool import BlockPool
from tether.kvcache.errors import InvalidKVRequestError, KVCacheIntegrityError
from tether.kvcache.eviction import EvictionPolicy
from tether.kvcache.integrity import check_pool_integrity
from tether.kvcache.stats import KVStats
from tether.kvcache.transfers import CopyQueue, PendingCopies


class CpuTier:
    """Moves blocks between the GPU pool and host blocks, by queueing copies and keeping both indexes right.

    Rules:
    - ``store``/``fetch`` reuse a block whose key the destination index already holds (no copy); only a
      miss takes a block and queues a copy, and the new block is indexed under the key at once.
    - ``fetch`` needs the caller to hold a reference on each CPU block for the duration of the call.
    - ``blocks_to_store``/``blocks_to_fetch`` are pure and say how many free blocks the call would use.
    - With ``offload_on_evict``, each hashed GPU block the pool evicts is stored unless its key is already
      on CPU or no CPU block is free or evictable (then it is dropped, as without a CPU tier).
    """

    def __init__(
        self,
        num_blocks: int,
        eviction: EvictionPolicy,
        gpu: BlockPool,
        counters: KVStats,
        clock: Callable[[], float],
        offload_on_evict: bool = False,
    ):
        if num_blocks < 0:
            raise InvalidKVRequestError(f"num_cpu_blocks must be >= 0, got {num_blocks}")
        self.pool = BlockPool(num_blocks, eviction) if num_blocks else None
        if self.pool is not None:
            self.pool.on_evict = self._count_cpu_eviction
        self.gpu = gpu
        self.gpu.on_evict = self._on_gpu_evict
        self.queue = CopyQueue()
        self.counters = counters
        self.offload_on_evict = offload_on_evict
        self._clock = clock

    @property
    def num_blocks(self) -> int:
        return self.pool.num_blocks if self.pool is not None else 0

    @property
    def num_free_blocks(self) -> int:
        """CPU blocks a store can take: free queue plus evictable."""
        return self.pool.num_free_blocks if self.pool is not None else 0

    @property
    def _blocks(self) -> BlockPool:
        if self.pool is None:
            raise InvalidKVRequestError("the CPU tier has no blocks (num_cpu_blocks=0)")
        return self.pool

    def lookup(self, key: BlockKey) -> int | None:
        return self.pool.lookup(*key) if self.pool is not None else None

    def lookup_all(self, keys: Sequence[BlockKey]) -> list[int | None]:
        """``lookup`` of each key."""
        return self.pool.index.lookup_all(keys) if self.pool is not None else [None] * len(keys)

    def block(self, cpu_block: int) -> Block:
        return self._blocks.block(cpu_block)

    def key(self, cpu_block: int) -> BlockKey:
        key = self.block(cpu_block).key
        if key is None:
            raise InvalidKVRequestError(
                f"CPU block {cpu_block} holds no hash; only indexed blocks are fetched"
            )
        return key

    def incref_all(self, cpu_blocks: Sequence[int]) -> None:
        if cpu_blocks:
            self._blocks.incref_all(cpu_blocks)

    def decref_all(self, cpu_blocks: Sequence[int]) -> None:
        """Drop one reference on each block, in the order given (pass tail first)."""
        if cpu_blocks:
            self._blocks.decref_all(cpu_blocks, self._clock())

    def first_stale_block(self, cpu_blocks: Sequence[int], block_hashes: Sequence[int]) -> int | None:
        if not cpu_blocks:
            return None
        if self.pool is None:
            return cpu_blocks[0]
        return self.pool.first_stale_block(cpu_blocks, block_hashes)

    def blocks_to_store(self, keys: Sequence[BlockKey]) -> int:
        """CPU blocks ``store(keys)`` would take from the free count; no side effects."""
        hits = self.lookup_all(keys)
        if self.pool is None:
            return len(hits)
        eviction = self.pool.eviction
        return sum(1 for cpu_block in hits if cpu_block is None or cpu_block in eviction)

    def store(self, gpu_blocks: Sequence[int], keys: Sequence[BlockKey]) -> tuple[list[int], int]:
        """One new reference on a CPU block holding each GPU block's KV, and how many copies were queued.

        The caller checked ``blocks_to_store(keys) <= num_free_blocks``.
        """
        hits = self.lookup_all(keys)
        self.incref_all([cpu_block for cpu_block in hits if cpu_block is not None])
        cpu_blocks: list[int] = []
        for gpu_block, key, cpu_block in zip(gpu_blocks, keys, hits, strict=True):
            if cpu_block is None:
                cpu_block = self._take_block(key)
                self._queue_to_cpu(gpu_block, cpu_block)
            cpu_blocks.append(cpu_block)
        return cpu_blocks, sum(1 for cpu_block in hits if cpu_block is None)

    def blocks_to_fetch(self, keys: Sequence[BlockKey]) -> int:
        """GPU blocks ``fetch(..., keys)`` would take from the GPU free count; no side effects."""
        eviction = self.gpu.eviction
        hits = self.gpu.index.lookup_all(keys)
        return sum(1 for gpu_block in hits if gpu_block is None or gpu_block in eviction)

    def fetch(self, cpu_blocks: Sequence[int], keys: Sequence[BlockKey]) -> list[int]:
        """One new reference on a GPU block holding each CPU block's KV (GPU hits first, then copies).

        The caller holds a reference on every CPU block and checked ``blocks_to_fetch`` against the GPU
        free count. Each copied CPU block gets a transit reference, dropped by ``take_pending_copies``.
        """
        gpu, counters = self.gpu, self.counters
        hits = gpu.index.lookup_all(keys)
        gpu.incref_all([gpu_block for gpu_block in hits if gpu_block is not None])
        gpu_blocks: list[int] = []
        for cpu_block, key, gpu_block in zip(cpu_blocks, keys, hits, strict=True):
            if gpu_block is None:
                gpu_block = gpu.allocate()
                gpu.cache_block(gpu_block, *key)
                self._blocks.incref(cpu_block)
                self.queue.queue_to_gpu(cpu_block, gpu_block)
                counters.blocks_to_gpu += 1
            gpu_blocks.append(gpu_block)
        return gpu_blocks

    def take_pending_copies(self) -> PendingCopies:
        """The queued copies; the transit references of their CPU sources are dropped, tail first."""
        pending = self.queue.take()
        self.decref_all([copy.src for copy in reversed(pending.to_gpu)])
        return pending

    def check_integrity(self, pin_refs: Counter[int], block_size: int) -> None:
        """CPU pool rules with references = parked pins + transit; pending copies name real blocks."""
        refs = pin_refs + self.queue.transit_refs()
        if self.pool is not None:
            try:
                check_pool_integrity(self.pool, refs, block_size)
            except KVCacheIntegrityError as error:
                raise KVCacheIntegrityError(f"CPU tier: {error}") from None
        for direction, copies, src_blocks, dst_blocks in (
            ("to_cpu", self.queue.to_cpu, self.gpu.num_blocks, self.num_blocks),
            ("to_gpu", self.queue.to_gpu, self.num_blocks, self.gpu.num_blocks),
        ):
            for copy in copies:
                if not (0 <= copy.src < src_blocks and 0 <= copy.dst < dst_blocks):
                    raise KVCacheIntegrityError(
                        f"pending {direction} copy {copy} names a block that does not exist"
                    )
        hazard = self.queue.first_hazard()
        if hazard is not None:
            raise KVCacheIntegrityError(f"pending copies break the to_cpu-first order: {hazard}")

    def _take_block(self, key: BlockKey) -> int:
        """A CPU block with one reference, indexed under ``key`` unless another block holds that hash."""
        cpu_block = self._blocks.allocate()
        self._blocks.cache_block(cpu_block, *key)
        return cpu_block

    def _queue_to_cpu(self, gpu_block: int, cpu_block: int) -> None:
        self.queue.queue_to_cpu(gpu_block, cpu_block)
        self.counters.blocks_to_cpu += 1

    def _on_gpu_evict(self, block: Block) -> None:
        self.counters.gpu_evictions += 1
        if not self.offload_on_evict or self.pool is None:
            return
        key = block.key
        if key is None or self.pool.num_free_blocks == 0 or self.pool.index.lookup(*key) is not None:
            return
        cpu_block = self._take_block(key)
        if self.block(cpu_block).is_cached:
            self._queue_to_cpu(block.block_id, cpu_block)
        self.decref_all([cpu_block])

    def _count_cpu_eviction(self, block: Block) -> None:
        self.counters.cpu_evictions += 1
