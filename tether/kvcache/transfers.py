"""Block copies between the GPU pool and the CPU tier: the values the engine executes, and their queue.

The manager only does bookkeeping; the engine moves the tensors. Once per step, after scheduling and
before the forward pass, the engine calls ``take_pending_copies()`` and executes the copies in this order::

    schedule()  ──►  take_pending_copies()  ──►  1. every to_cpu copy, in order   (GPU block ─► CPU block)
    (allocate,        (queue empties, CPU         2. every to_gpu copy, in order   (CPU block ─► GPU block)
     park, ...)        sources are released)      3. forward pass (writes new KV), then cache_blocks()

Why this order is safe (everything the manager queues within one step keeps these rules):

- A GPU block is read by to_cpu before anything writes it this step, so a block can be evicted to CPU
  and re-filled by a to_gpu copy (or by the forward pass) in the same step:
  ``to_cpu(g -> c1) ... to_gpu(c2 -> g)`` runs in that order.
- A GPU block that is the target of a pending to_gpu copy is never the source of a to_cpu copy: its hash
  is already on CPU (the copy's source holds it), so offload and ``park`` reuse that CPU block instead.
- A CPU block that is the source of a pending to_gpu copy holds a transit reference until the queue is
  taken, so it cannot be evicted and overwritten by a later to_cpu copy of the same step. A CPU block
  written by to_cpu and read by to_gpu in the same step gets its contents first (to_cpu runs first).
- Several to_cpu copies into one CPU block (it was evicted from the CPU tier and reused in the same
  step), or several to_gpu copies into one GPU block, run in queue order, so the last one wins, as
  the bookkeeping assumes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class BlockCopy:
    """Copy the KV of block ``src`` into block ``dst`` (which tier each is on depends on the list)."""

    src: int
    dst: int


@dataclass(frozen=True)
class PendingCopies:
    """One step's copies: execute all of ``to_cpu`` (GPU src, CPU dst), then all of ``to_gpu`` (CPU src,
    GPU dst), both in order, before the forward pass."""

    to_cpu: tuple[BlockCopy, ...] = ()
    to_gpu: tuple[BlockCopy, ...] = ()

    @property
    def num_copies(self) -> int:
        return len(self.to_cpu) + len(self.to_gpu)

    def __bool__(self) -> bool:
        return self.num_copies > 0


class CopyQueue:
    """The copies queued since the last ``take``, in the order the manager decided them.

    The caller takes and drops the transit references; ``transit_refs`` says which it must hold.
    """

    def __init__(self) -> None:
        self._log: list[tuple[bool, BlockCopy]] = []  # both directions, in the order they were queued
        self._to_cpu: list[BlockCopy] = []
        self._to_gpu: list[BlockCopy] = []

    def queue_to_cpu(self, gpu_block: int, cpu_block: int) -> None:
        copy = BlockCopy(gpu_block, cpu_block)
        self._log.append((True, copy))
        self._to_cpu.append(copy)

    def queue_to_gpu(self, cpu_block: int, gpu_block: int) -> None:
        """The caller holds one transit reference on ``cpu_block`` until ``take``."""
        copy = BlockCopy(cpu_block, gpu_block)
        self._log.append((False, copy))
        self._to_gpu.append(copy)

    @property
    def to_cpu(self) -> tuple[BlockCopy, ...]:
        return tuple(self._to_cpu)

    @property
    def to_gpu(self) -> tuple[BlockCopy, ...]:
        return tuple(self._to_gpu)

    def transit_refs(self) -> Counter[int]:
        """CPU block -> transit references (one per pending to_gpu copy it is the source of)."""
        return Counter(copy.src for copy in self.to_gpu)

    def first_hazard(self) -> str | None:
        """The first copy whose result would differ under the to_cpu-first execution order, if any."""
        written_gpu: set[int] = set()
        read_cpu: set[int] = set()
        for to_cpu, copy in self._log:
            if not to_cpu:
                written_gpu.add(copy.dst)
                read_cpu.add(copy.src)
            elif copy.src in written_gpu:
                return f"to_cpu copy {copy} reads GPU block {copy.src} after a pending to_gpu copy fills it"
            elif copy.dst in read_cpu:
                return f"to_cpu copy {copy} overwrites CPU block {copy.dst} before a pending to_gpu copy reads it"
        return None

    def take(self) -> PendingCopies:
        """Everything queued, in order; the queue is empty afterwards."""
        pending = PendingCopies(self.to_cpu, self.to_gpu)
        self._log.clear()
        self._to_cpu.clear()
        self._to_gpu.clear()
        return pending

    def __len__(self) -> int:
        return len(self._log)
