"""Counters the benchmarks read: copies between tiers, evictions, prefix hits."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class KVStats:
    """Running totals since the manager was built; the manager and the CPU tier bump them, and
    ``KVCacheManager.stats()`` returns a copy (``snapshot``)."""

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
        """A copy: later bumps do not change it."""
        return replace(self)
