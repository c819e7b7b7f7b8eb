"""The shared-prefix cascade equals paged attention over the concatenated tables (prefix pages + own pages),
and the tree generalisation equals it over every level's pages."""

from __future__ import annotations

import pytest
import torch

from tests.kernels.batches import assert_attention_close, make_batch
from tests.kernels.conftest import kernel_dtypes
from tether.kernels import CascadeLevel, torch_ops

pytest.importorskip("triton")

import tether.kernels as kernels  # noqa: E402


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1)])
@pytest.mark.parametrize(
    ("prefix_len", "seqs"),
    [
        (16, [(0, 17)]),
        (48, [(0, 1), (5, 1), (20, 1)]),  # decode batch on a shared prefix
        (48, [(3, 33), (0, 1), (16, 17)]),  # extend + decode + extend
    ],
)
def test_shared_prefix_equals_full_attention(prefix_len, seqs, hq, hkv, dtype, device):
    batch = make_batch(seqs, hq, hkv, 32, dtype, device, prefix_len=prefix_len, seed=prefix_len + len(seqs))
    got = kernels.shared_prefix_attention(
        batch.q, batch.k_cache, batch.v_cache, batch.prefix_blocks, prefix_len, *batch.args()[3:]
    )
    full = batch.with_prefix()
    assert_attention_close(got, torch_ops.paged_attention(*full.args()))
    assert_attention_close(got, kernels.paged_attention(*full.args()))
    expected = torch_ops.shared_prefix_attention(
        batch.q, batch.k_cache, batch.v_cache, batch.prefix_blocks, prefix_len, *batch.args()[3:]
    )
    assert_attention_close(got, expected)


def test_empty_prefix_is_plain_paged_attention(device):
    batch = make_batch([(2, 3), (0, 1)], 4, 2, 32, torch.float32, device, seed=11)
    got = kernels.shared_prefix_attention(
        batch.q, batch.k_cache, batch.v_cache, batch.prefix_blocks, 0, *batch.args()[3:], causal=False
    )
    assert_attention_close(got, torch_ops.paged_attention(*batch.args(), causal=False))


def test_two_level_tree_equals_full_attention(device):
    """Root (32 tokens) shared by all four sequences; two branches (16 tokens each) shared by pairs; then each
    sequence's own tokens."""
    dt = torch.float32
    batch = make_batch([(0, 2), (4, 1), (9, 17), (0, 1)], 8, 2, 32, dt, device, prefix_len=64, seed=12)
    root, left, right = batch.prefix_blocks[:2], batch.prefix_blocks[2:3], batch.prefix_blocks[3:4]
    cu = batch.cu_seqlens_q.tolist()

    def i32(rows: list) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.int32, device=device)

    levels = [
        CascadeLevel(root.view(1, -1), i32([0, cu[4]]), i32([32])),
        CascadeLevel(torch.stack([left, right]), i32([0, cu[2], cu[4]]), i32([16, 16])),
    ]
    got = kernels.cascade_attention(batch.q, batch.k_cache, batch.v_cache, levels, *batch.args()[3:])
    tables = [torch.cat([root, left if s < 2 else right, batch.block_table[s]]) for s in range(4)]
    full = (
        batch.q,
        batch.k_cache,
        batch.v_cache,
        torch.stack(tables),
        batch.cu_seqlens_q,
        batch.kv_lens + 48,
    )
    assert_attention_close(got, torch_ops.paged_attention(*full))
    assert_attention_close(got, torch_ops.cascade_attention(batch.q, batch.k_cache, batch.v_cache, levels,
                                                            *batch.args()[3:]))  # fmt: skip
