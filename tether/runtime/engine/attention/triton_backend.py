"""The Triton backend: ``tether.kernels.store_kv`` + ``tether.kernels.paged_attention``, and the shared-prefix
cascade when enough sequences of a batch start on the same cached pages (parallel branches of one program, or many
programs with the same system prompt and tools).

The batch plan is computed once per step on the host (one copy of the block table) and reused by every layer:
the step's ``AttentionMetadata`` object is the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tether.kernels import CascadeLevel
from tether.runtime.engine.attention.base import AttentionMetadata

MIN_SHARED_PREFIX_SEQS = 4
"""Sequences that must share a cached prefix before a step takes the cascade path. Below this, reading the
prefix once per query tile instead of once per sequence saves too little to pay for the extra launches
(prefix pass + merge) and the permutation of q and o."""


@dataclass(frozen=True)
class PrefixGroup:
    """Sequences (batch indices, in batch order) whose block tables start with the same ``num_blocks``
    pages, all full and cached before each member's first query of the step."""

    members: tuple[int, ...]
    num_blocks: int


def find_prefix_groups(
    tables: list[list[int]],
    q_lens: list[int],
    kv_lens: list[int],
    block_size: int,
    min_seqs: int = MIN_SHARED_PREFIX_SEQS,
) -> list[PrefixGroup]:
    """Groups of at least ``min_seqs`` sequences on the same first page; each shares the longest run of
    pages common to all of its members that lies wholly before every member's first new token (so the
    prefix is in the cache and precedes every query). Same page id = same cached KV (the block pool's
    prefix sharing)."""
    by_first: dict[int, list[int]] = {}
    for s, table in enumerate(tables):
        if (kv_lens[s] - q_lens[s]) // block_size >= 1 and q_lens[s] > 0:
            by_first.setdefault(table[0], []).append(s)
    groups = []
    for members in by_first.values():
        if len(members) < min_seqs:
            continue
        limit = min((kv_lens[s] - q_lens[s]) // block_size for s in members)
        first = tables[members[0]]
        n = 1
        while n < limit and all(tables[s][n] == first[n] for s in members):
            n += 1
        groups.append(PrefixGroup(members=tuple(members), num_blocks=n))
    return groups


@dataclass(frozen=True)
class CascadePlan:
    """Tensors of one step's cascade, in the permuted order (groups first, in group order, then the rest).

    token_order: int64 [T] or None   flat query rows of the permuted batch (None: already in that order)
    level:       the shared pages of each group (+ an empty group for the rest)
    block_table / cu_seqlens_q / kv_lens: each sequence's own KV after its group's pages
    """

    groups: tuple[PrefixGroup, ...]
    token_order: torch.Tensor | None
    level: CascadeLevel
    block_table: torch.Tensor
    cu_seqlens_q: torch.Tensor
    kv_lens: torch.Tensor
    max_q_len: int


class TritonAttentionBackend:
    name = "triton"

    def __init__(self) -> None:
        try:
            from tether.kernels import paged_attention  # noqa: F401  (triton is needed from here on)
        except ImportError as exc:
            raise RuntimeError(f"the triton attention backend needs triton: {exc}") from exc
        self._meta: AttentionMetadata | None = None
        self._plan: CascadePlan | None = None
        self.cascade_steps = 0  # steps that used the shared-prefix path (for tests and benchmarks)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        from tether.kernels import cascade_attention, paged_attention, store_kv

        store_kv(k, v, k_cache, v_cache, meta.slot_mapping)
        scale = 1.0 / math.sqrt(q.shape[-1])
        plan = self._plan_for(meta, k_cache.shape[1])
        if plan is None:
            o, _ = paged_attention(
                q, k_cache, v_cache, meta.block_table, meta.cu_seqlens_q, meta.kv_lens,
                sm_scale=scale, max_q_len=meta.max_q_len,
            )  # fmt: skip
            return o
        qp = q if plan.token_order is None else q.index_select(0, plan.token_order)
        op, _ = cascade_attention(
            qp, k_cache, v_cache, [plan.level], plan.block_table, plan.cu_seqlens_q, plan.kv_lens,
            sm_scale=scale, max_q_len=plan.max_q_len,
        )  # fmt: skip
        if plan.token_order is None:
            return op
        o = torch.empty_like(op)
        o.index_copy_(0, plan.token_order, op)
        return o

    def _plan_for(self, meta: AttentionMetadata, block_size: int) -> CascadePlan | None:
        if meta is not self._meta:
            self._meta, self._plan = meta, build_cascade_plan(meta, block_size)
            self.cascade_steps += self._plan is not None
        return self._plan


def build_cascade_plan(meta: AttentionMetadata, block_size: int) -> CascadePlan | None:
    """None when no group of sequences qualifies (see ``find_prefix_groups``)."""
    cu = meta.cu_seqlens_q.tolist()
    kv_lens = meta.kv_lens.tolist()
    q_lens = [cu[s + 1] - cu[s] for s in range(len(kv_lens))]
    tables = meta.block_table.tolist()
    groups = find_prefix_groups(tables, q_lens, kv_lens, block_size)
    if not groups:
        return None
    grouped = {s for g in groups for s in g.members}
    order = [s for g in groups for s in g.members] + [s for s in range(len(kv_lens)) if s not in grouped]
    shift = {s: g.num_blocks for g in groups for s in g.members}
    own_tables = [tables[s][shift.get(s, 0) :] for s in order]
    own_kv = [kv_lens[s] - shift.get(s, 0) * block_size for s in order]
    own_cu = [0]
    for s in order:
        own_cu.append(own_cu[-1] + q_lens[s])
    level_cu, level_tables, level_kv = [0], [], []
    for g in groups:
        level_cu.append(level_cu[-1] + sum(q_lens[s] for s in g.members))
        level_tables.append(tables[g.members[0]][: g.num_blocks])
        level_kv.append(g.num_blocks * block_size)
    if level_cu[-1] < own_cu[-1]:  # the ungrouped rest: an empty group (lse = -inf, merged away)
        level_cu.append(own_cu[-1])
        level_tables.append([])
        level_kv.append(0)
    dev = meta.block_table.device
    tokens = [t for s in order for t in range(cu[s], cu[s + 1])]
    identity = tokens == list(range(len(tokens)))
    return CascadePlan(
        groups=tuple(groups),
        token_order=None if identity else torch.tensor(tokens, dtype=torch.int64, device=dev),
        level=CascadeLevel(
            block_table=_padded(level_tables, dev),
            cu_seqlens_q=torch.tensor(level_cu, dtype=torch.int32, device=dev),
            kv_lens=torch.tensor(level_kv, dtype=torch.int32, device=dev),
            max_q_len=max(b - a for a, b in zip(level_cu, level_cu[1:])),
        ),
        block_table=_padded(own_tables, dev),
        cu_seqlens_q=torch.tensor(own_cu, dtype=torch.int32, device=dev),
        kv_lens=torch.tensor(own_kv, dtype=torch.int32, device=dev),
        max_q_len=meta.max_q_len,
    )


def _padded(rows: list[list[int]], device: torch.device) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.int32, device=device)
