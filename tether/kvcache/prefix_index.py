"""The prefix index: chained hashes of full blocks, mapped to the block that holds their KV.

A block's hash covers its own tokens and its parent's hash, so a hit on block ``i`` stands for the whole
prefix ``tokens[0 : (i + 1) * block_size]``::

    tokens   | t0 .. t3 | t4 .. t7 | t8 t9 (partial, never indexed)
    hash     | h0=H(root, t0..t3) | h1=H(h0, t4..t7) |

Only full, computed blocks are indexed. A lookup verifies the stored block's tokens and parent hash, so a
hash collision is a miss, never a wrong hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tether.kvcache.block import Block
from tether.kvcache.errors import BlockStateError

_ROOT_HASH = 0x9E3779B97F4A7C15
"""The parent of a sequence's first block (``hash(None)`` varies by process before Python 3.12)."""


def hash_block(parent_hash: int | None, token_ids: tuple[int, ...]) -> int:
    """The chained hash of a full block: deterministic across processes for int token ids."""
    return hash((_ROOT_HASH if parent_hash is None else parent_hash, token_ids))


@dataclass(frozen=True)
class PrefixMatch:
    """The longest run of cached full blocks at the start of a prompt, as found by ``match``.

    The run starts on the GPU and may go on in the CPU tier where the GPU run stops::

        prompt blocks | 0   1   | 2   3   4     | 5 (miss) ...
        tier          | GPU     | CPU           |
        field         | block_ids | cpu_block_ids |
        block_hashes  | h0  h1  | h2  h3  h4    |

    Block ``i`` of the run holds tokens ``[i * block_size, (i + 1) * block_size)`` and is indexed under
    ``block_hashes[i]``; ``num_tokens == num_blocks * block_size`` counts both tiers. The CPU blocks need a
    GPU block and a copy each when adopted. The default value is the empty match.
    """

    block_ids: tuple[int, ...] = ()
    num_tokens: int = 0
    block_hashes: tuple[int, ...] = ()
    cpu_block_ids: tuple[int, ...] = ()
    epoch: tuple[int, int] | None = field(default=None, compare=False)
    """The manager's ``hash_epoch`` when the match was made: if none of the hashes dropped since then is
    one of ``block_hashes``, every matched block still holds its hash and the match can be extended."""
    hash_set: frozenset[int] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.block_ids) + len(self.cpu_block_ids) != len(self.block_hashes):
            raise ValueError(
                f"PrefixMatch has {len(self.block_ids)} block ids (+{len(self.cpu_block_ids)} on CPU) but"
                f" {len(self.block_hashes)} hashes"
            )

    @property
    def num_blocks(self) -> int:
        """Matched blocks on both tiers."""
        return len(self.block_ids) + len(self.cpu_block_ids)

    @property
    def num_gpu_blocks(self) -> int:
        return len(self.block_ids)

    @property
    def num_gpu_tokens(self) -> int:
        """Tokens held by the GPU blocks alone (``num_tokens`` scaled to the GPU share of the run)."""
        return self.num_tokens * len(self.block_ids) // self.num_blocks if self.num_blocks else 0

    @property
    def gpu_block_hashes(self) -> tuple[int, ...]:
        return self.block_hashes[: len(self.block_ids)]

    @property
    def cpu_block_hashes(self) -> tuple[int, ...]:
        return self.block_hashes[len(self.block_ids) :]

    @property
    def last_hash(self) -> int | None:
        """The hash the next block of the sequence chains onto; ``None`` for the empty match."""
        return self.block_hashes[-1] if self.block_hashes else None


class PrefixIndex:
    """``block_hash -> block_id`` over the pool's blocks; at most one block per hash.

    The index does not own block state: the pool sets a block's hash fields and inserts it here, and drops
    the entry before it clears them.
    """

    def __init__(self, blocks: Sequence[Block]):
        self._blocks = blocks
        self._by_hash: dict[int, int] = {}

    def lookup(self, block_hash: int, parent_hash: int | None, token_ids: tuple[int, ...]) -> int | None:
        """The block holding ``token_ids`` after ``parent_hash``, or ``None``; a collision is a miss."""
        block_id = self._by_hash.get(block_hash)
        if block_id is None:
            return None
        block = self._blocks[block_id]
        if block.token_ids != token_ids or block.parent_hash != parent_hash:
            return None
        return block_id

    def lookup_all(self, keys: Iterable[tuple[int, int | None, tuple[int, ...]]]) -> list[int | None]:
        """``lookup`` of each ``(block_hash, parent_hash, token_ids)`` key, in one loop (pins move hundreds)."""
        by_hash, blocks = self._by_hash, self._blocks
        hits: list[int | None] = []
        for block_hash, parent_hash, token_ids in keys:
            block_id = by_hash.get(block_hash)
            if block_id is not None:
                block = blocks[block_id]
                if block.token_ids != token_ids or block.parent_hash != parent_hash:
                    block_id = None
            hits.append(block_id)
        return hits

    def insert(self, block_hash: int, block_id: int) -> bool:
        """Index ``block_id`` under ``block_hash``; ``False`` (and no change) when the hash is taken."""
        if block_hash in self._by_hash:
            return False
        self._by_hash[block_hash] = block_id
        return True

    def remove(self, block_hash: int, block_id: int) -> None:
        """Drop the entry of ``block_hash``; it must point at ``block_id``."""
        indexed = self._by_hash.get(block_hash)
        if indexed != block_id:
            raise BlockStateError(
                f"block {block_id}: hash {block_hash} is indexed to block {indexed}, not to this block"
            )
        del self._by_hash[block_hash]

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._by_hash

    def __len__(self) -> int:
        return len(self._by_hash)

    def items(self) -> Iterator[tuple[int, int]]:
        """``(block_hash, block_id)`` pairs, for integrity checks."""
        return iter(list(self._by_hash.items()))
