"""Paged KV-cache bookkeeping: block pool, prefix cache, eviction policies. Pure Python, no torch.

``KVCacheManager`` is the scheduler's entry point. The values it hands out besides block-id lists are
frozen: ``PrefixMatch``, ``PinInfo`` and ``PendingCopies`` (of ``BlockCopy``); ``stats()`` returns a copy of the
running ``KVStats``.
"""

from __future__ import annotations

from tether.kvcache.block import Block, BlockKey
from tether.kvcache.block_pool import BlockPool
from tether.kvcache.cpu_tier import CpuTier
from tether.kvcache.errors import (
    BlockStateError,
    InvalidKVRequestError,
    KVCacheError,
    KVCacheIntegrityError,
    OutOfBlocksError,
    OutOfCpuBlocksError,
    StalePrefixError,
    UnknownEvictionPolicyError,
    UnknownPinError,
    UnknownSequenceError,
)
from tether.kvcache.eviction import EvictionPolicy, LRUEviction, get_eviction_policy, register_eviction_policy
from tether.kvcache.manager import KVCacheManager
from tether.kvcache.owners import OwnerRefs
from tether.kvcache.pins import PinInfo, PinTable
from tether.kvcache.prefix_index import PrefixIndex, PrefixMatch, hash_block
from tether.kvcache.stats import KVStats
from tether.kvcache.transfers import BlockCopy, CopyQueue, PendingCopies

__all__ = [
    "Block",
    "BlockCopy",
    "BlockKey",
    "BlockPool",
    "BlockStateError",
    "CopyQueue",
    "CpuTier",
    "EvictionPolicy",
    "InvalidKVRequestError",
    "KVCacheError",
    "KVCacheIntegrityError",
    "KVCacheManager",
    "KVStats",
    "LRUEviction",
    "OutOfBlocksError",
    "OutOfCpuBlocksError",
    "OwnerRefs",
    "PendingCopies",
    "PinInfo",
    "PinTable",
    "PrefixIndex",
    "PrefixMatch",
    "StalePrefixError",
    "UnknownEvictionPolicyError",
    "UnknownPinError",
    "UnknownSequenceError",
    "get_eviction_policy",
    "hash_block",
    "register_eviction_policy",
]
