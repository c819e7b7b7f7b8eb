"""Typed errors of the KV-cache package; every message names the sequence or block at fault."""

from __future__ import annotations

from collections.abc import Hashable


class KVCacheError(Exception):
    """Base class of every error raised by ``kvcache``."""


class OutOfBlocksError(KVCacheError):
    """The pool cannot supply the blocks a request needs; nothing was changed."""

    def __init__(self, message: str, *, seq_id: Hashable | None = None, needed: int = 0, available: int = 0):
        super().__init__(message)
        self.seq_id = seq_id
        self.needed = needed
        self.available = available


class UnknownSequenceError(KVCacheError):
    """A call named a sequence the manager does not hold."""

    def __init__(self, seq_id: Hashable):
        super().__init__(f"unknown sequence {seq_id!r}: it was never allocated or has been freed")
        self.seq_id = seq_id


class OutOfCpuBlocksError(OutOfBlocksError):
    """The CPU tier cannot hold the blocks a pin needs to park; nothing was changed."""


class UnknownPinError(KVCacheError):
    """A call named a pin the manager does not hold."""

    def __init__(self, pin_id: Hashable):
        super().__init__(f"unknown pin {pin_id!r}: it was never pinned or has been unpinned")
        self.pin_id = pin_id


class InvalidKVRequestError(KVCacheError):
    """A call's arguments break the manager's contract (negative sizes, a prefix on a later call, ...)."""


class StalePrefixError(InvalidKVRequestError):
    """A ``PrefixMatch`` names a block that no longer holds the matched hash (it was evicted since)."""


class BlockStateError(KVCacheError):
    """A pool operation does not fit the block's state (decref of a free block, incref of a free one)."""


class UnknownEvictionPolicyError(KVCacheError):
    """``get_eviction_policy`` was asked for a name that is not registered."""


class KVCacheIntegrityError(KVCacheError):
    """``check_integrity`` found a broken invariant; the message says which block and which rule."""
