"""Counters the benchmarks read: copies between tiers, evictions, prefix hits."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class KVCounters:
    """Running totals since the manager was built; the manager and the CPU tier bump them."""

    blocks_to_cpu: int = 0
    """Blocks queued for a GPU -> CPU copy (offload on eviction and ``park``)."""
    blocks_to_gpu: int = 0
    """Blocks queued for a CPU -> GPU copy (CPU prefix hits and ``prefetch``)."""
    gpu_evictions: int = 0
    """Hashed GPU blocks evicted to reuse their memory."""
    cpu_evictions: int = 0
    """Hashed CPU blocks evicted to reuse their memory."""
    gpu_hit_blocks: int = 0
    """Prefix blocks adopted from the GPU index by ``allocate``."""
    cpu_hit_blocks: int = 0
    """Prefix blocks adopted from the CPU index by ``allocate`` (each needs a GPU block, maybe a copy)."""

    def snapshot(self) -> KVStats:
        return KVStats(**asdict(self))


@dataclass(frozen=True)
class KVStats:
    """A frozen copy of ``KVCounters``, as returned by ``KVCacheManager.stats()``."""

    blocks_to_cpu: int = 0
    blocks_to_gpu: int = 0
    gpu_evictions: int = 0
    cpu_evictions: int = 0
    gpu_hit_blocks: int = 0
    cpu_hit_blocks: int = 0
