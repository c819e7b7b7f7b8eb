"""Eviction policies: the order in which cached, unreferenced blocks give up their memory.

The pool holds the evictable set (blocks with ``ref_count == 0`` and a prefix hash) only through an
``EvictionPolicy``; the order lives in the policy, never in the pool. Policies are chosen by name from a
registry so the engine config can name one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tether.kvcache.errors import BlockStateError, UnknownEvictionPolicyError


@runtime_checkable
class EvictionPolicy(Protocol):
    """Orders the evictable blocks of a pool.

    Rules every policy keeps:
    - ``add`` is called once when a block becomes evictable; adding a block already held is an error.
    - ``remove`` is called when an evictable block is referenced again (a prefix hit); removing a block
      not held is an error.
    - ``pop_victim`` removes and returns the block to evict next, or ``None`` when none is held.
    - ``len()`` and ``in`` reflect exactly the blocks added and not yet removed or popped.
    """

    def add(self, block_id: int, now: float) -> None: ...

    def remove(self, block_id: int) -> None: ...

    def pop_victim(self) -> int | None: ...

    def __len__(self) -> int: ...

    def __contains__(self, block_id: object) -> bool: ...


class LRUEviction:
    """Least recently freed first; blocks freed together leave in the order they were added.

    The manager frees a sequence's blocks tail first, so for one free the tail is evicted before the head
    and shared prefixes survive longest. ``now`` is kept for inspection; with a monotonic clock the
    insertion order already is the time order.
    """

    def __init__(self) -> None:
        self._freed_at: OrderedDict[int, float] = OrderedDict()

    def add(self, block_id: int, now: float) -> None:
        if block_id in self._freed_at:
            raise BlockStateError(f"block {block_id} is already evictable; it cannot be added twice")
        self._freed_at[block_id] = now

    def remove(self, block_id: int) -> None:
        if self._freed_at.pop(block_id, None) is None:
            raise BlockStateError(f"block {block_id} is not evictable; it cannot be removed from eviction")

    def pop_victim(self) -> int | None:
        if not self._freed_at:
            return None
        block_id, _ = self._freed_at.popitem(last=False)
        return block_id

    def freed_at(self, block_id: int) -> float:
        """The ``now`` passed when ``block_id`` became evictable."""
        return self._freed_at[block_id]

    def __len__(self) -> int:
        return len(self._freed_at)

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._freed_at

    def __repr__(self) -> str:
        return f"LRUEviction(order={list(self._freed_at)})"


_POLICIES: dict[str, Callable[[], EvictionPolicy]] = {"lru": LRUEviction}


def register_eviction_policy(name: str, factory: Callable[[], EvictionPolicy]) -> None:
    """Make ``factory`` available as ``get_eviction_policy(name)``; re-registering a name replaces it."""
    _POLICIES[name] = factory


def get_eviction_policy(name: str) -> EvictionPolicy:
    """A fresh instance of the policy registered as ``name`` (``"lru"`` is built in)."""
    try:
        factory = _POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(_POLICIES))
        raise UnknownEvictionPolicyError(f"unknown eviction policy {name!r}; registered: {known}") from None
    return factory()
