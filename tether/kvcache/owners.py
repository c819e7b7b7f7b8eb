"""Owners and the block references they hold.

An owner is anything that keeps blocks alive: today a sequence (keyed by its ``seq_id``), later a pin that
outlives its sequence. Each reference an owner holds is one ``incref`` on the pool; the manager's integrity
check compares these counts with the pool's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Iterator

from tether.kvcache.errors import InvalidKVRequestError


class OwnerRefs:
    """``owner -> [block_id, ...]`` in acquisition order; an owner may hold the same block once per ref.

    This table only records references; taking and dropping them on the pool is the caller's job.
    """

    def __init__(self) -> None:
        self._held: dict[Hashable, list[int]] = {}

    def open(self, owner: Hashable) -> None:
        """Start tracking ``owner`` with no blocks (it must not be tracked yet)."""
        if owner in self._held:
            raise InvalidKVRequestError(f"owner {owner!r} already holds blocks; release it before reopening")
        self._held[owner] = []

    def extend(self, owner: Hashable, block_ids: Iterable[int]) -> None:
        self._held[owner].extend(block_ids)

    def blocks(self, owner: Hashable) -> list[int]:
        """A copy of the blocks ``owner`` holds, in acquisition order."""
        return list(self._held[owner])

    def get(self, owner: Hashable) -> list[int] | None:
        """The live list of blocks ``owner`` holds, or ``None`` when it is not tracked: read it, never change
        it."""
        return self._held.get(owner)

    def view(self, owner: Hashable) -> list[int]:
        """The live list of blocks ``owner`` holds (no copy): read it, never change it."""
        return self._held[owner]

    def num_blocks(self, owner: Hashable) -> int:
        return len(self._held[owner])

    def release(self, owner: Hashable) -> list[int]:
        """Stop tracking ``owner`` and return the blocks it held, in acquisition order."""
        return self._held.pop(owner)

    def ref_counts(self) -> Counter[int]:
        """How many references all owners together hold on each block."""
        counts: Counter[int] = Counter()
        for block_ids in self._held.values():
            counts.update(block_ids)
        return counts

    def __contains__(self, owner: object) -> bool:
        return owner in self._held

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._held))

    def __len__(self) -> int:
        return len(self._held)
