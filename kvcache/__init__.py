"""Paged KV-cache bookkeeping: block pool, prefix cache, eviction policies. Pure Python, no torch.

``KVCacheManager`` is the scheduler's entry point; ``PrefixMatch`` is the only value it hands out besides
block-id lists.
"""

from __future__ import annotations

from kvcache.block import Block
from kvcache.block_pool import BlockPool
from kvcache.errors import (
    BlockStateError,
    InvalidRequestError,
    KVCacheError,
    KVCacheIntegrityError,
    OutOfBlocksError,
    StalePrefixError,
    UnknownEvictionPolicyError,
    UnknownSequenceError,
)
from kvcache.eviction import EvictionPolicy, LRUEviction, get_eviction_policy, register_eviction_policy
from kvcache.manager import KVCacheManager
from kvcache.owners import OwnerRefs
from kvcache.prefix_index import PrefixIndex, PrefixMatch, hash_block

__all__ = [
    "Block",
    "BlockPool",
    "BlockStateError",
    "EvictionPolicy",
    "InvalidRequestError",
    "KVCacheError",
    "KVCacheIntegrityError",
    "KVCacheManager",
    "LRUEviction",
    "OutOfBlocksError",
    "OwnerRefs",
    "PrefixIndex",
    "PrefixMatch",
    "StalePrefixError",
    "UnknownEvictionPolicyError",
    "UnknownSequenceError",
    "get_eviction_policy",
    "hash_block",
    "register_eviction_policy",
]
