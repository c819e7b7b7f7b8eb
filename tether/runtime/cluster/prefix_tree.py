"""Which replica has served which prompt prefix: the prefix-matching state of the ``prefix`` baseline (Ray Serve
LLM's ``PrefixTreeActor`` keeps the same per replica, over characters; here over whole blocks of token ids,
each keyed by a hash chained over the blocks before it, so a block hash names its whole prefix)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

BLOCK_TOKENS = 16


def block_hashes(prompt: Sequence[int], block: int = BLOCK_TOKENS) -> list[int]:
    """The chained hash of each whole block of ``prompt``, in order."""
    out, parent = [], 0
    for start in range(0, len(prompt) - block + 1, block):
        parent = hash((parent, tuple(prompt[start : start + block])))
        out.append(parent)
    return out


class PrefixIndex:
    def __init__(self, block: int = BLOCK_TOKENS) -> None:
        self.block = block
        self._holders: dict[int, set[str]] = {}  # block hash -> replicas that served a prompt with that prefix
        self._size: dict[str, int] = {}  # replica -> blocks inserted for it (Ray's tenant size)

    def add(self, replica: str) -> None:
        self._size.setdefault(replica, 0)

    def insert(self, prompt: Sequence[int], replica: str) -> None:
        self.add(replica)
        for h in block_hashes(prompt, self.block):
            holders = self._holders.setdefault(h, set())
            if replica not in holders:
                holders.add(replica)
                self._size[replica] += 1

    def match(self, prompt: Sequence[int], candidates: Iterable[str]) -> tuple[int, list[str]]:
        """The longest prefix of ``prompt`` (in tokens) some candidate has served, and the candidates that
        served it (all candidates when none matched a block)."""
        alive = set(candidates)
        matched = 0
        for h in block_hashes(prompt, self.block):
            holders = self._holders.get(h)
            if not holders or not (alive & holders):
                break
            alive &= holders
            matched += self.block
        return matched, sorted(alive)

    def smallest(self, candidates: Iterable[str]) -> list[str]:
        """The candidates with the fewest blocks inserted (Ray's ``get_smallest_tenants``)."""
        sizes = {r: self._size.get(r, 0) for r in candidates}
        if not sizes:
            return []
        least = min(sizes.values())
        return sorted(r for r, n in sizes.items() if n == least)

    def remove(self, replica: str) -> None:
        self._size.pop(replica, None)
        for holders in self._holders.values():
            holders.discard(replica)
