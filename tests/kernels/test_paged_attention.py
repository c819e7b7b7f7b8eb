"""The Triton paged attention kernel equals the torch reference: prefill, extend and decode over permuted
pages, GQA, padded head dims, causal and not, split-KV decode."""

from __future__ import annotations

import pytest
import torch

from tests.kernels.batches import assert_attention_close, make_batch
from tests.kernels.conftest import kernel_dtypes
from tether.kernels import torch_ops

pytest.importorskip("triton")

import tether.kernels as kernels  # noqa: E402
from tether.kernels.paged import attend, plan_launch  # noqa: E402
from tether.kernels.tiles import TileConfig  # noqa: E402

# (cached tokens, new tokens) with cached prefix 0 / 16 / 48 and new tokens 1 / 17 / 33 (lengths off the page
# size): the three-sequence batches hold all nine pairs, one-sequence runs a Latin square of them.
SINGLE = [[(0, 33)], [(16, 1)], [(48, 17)]]
TRIPLE = [
    [(0, 1), (16, 1), (48, 1)],  # a decode batch
    [(0, 17), (16, 33), (48, 1)],  # prefill + extend + decode
    [(0, 33), (16, 17), (48, 33)],
    [(48, 17), (16, 1), (0, 33)],
]


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
@pytest.mark.parametrize("head_dim", [32, 64])
@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1)])
@pytest.mark.parametrize("num_seqs", [1, 3])
def test_kernel_equals_reference(num_seqs, hq, hkv, head_dim, dtype, device):
    for i, seqs in enumerate(SINGLE if num_seqs == 1 else TRIPLE):
        batch = make_batch(seqs, hq, hkv, head_dim, dtype, device, seed=i)
        got = kernels.paged_attention(*batch.args())
        assert_attention_close(got, torch_ops.paged_attention(*batch.args()))


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1)])
def test_non_causal_sees_every_key(hq, hkv, dtype, device):
    batch = make_batch(TRIPLE[1], hq, hkv, 32, dtype, device, seed=7)
    got = kernels.paged_attention(*batch.args(), causal=False, sm_scale=0.2)
    assert_attention_close(got, torch_ops.paged_attention(*batch.args(), causal=False, sm_scale=0.2))


def test_padded_head_dim_and_group_of_eight(device):
    """D=40 pads to BLOCK_D=64 (masked); Hq/Hkv=8 packs 8 heads per token into the M dimension."""
    batch = make_batch([(5, 9), (30, 1)], 16, 2, 40, torch.float32, device, seed=3)
    assert_attention_close(kernels.paged_attention(*batch.args()), torch_ops.paged_attention(*batch.args()))


def test_small_tiles_many_iterations_and_query_tiles(device):
    """BLOCK_N=16 with 8-token pages (two pages per step) and BLOCK_M=16 with a GQA group of 4 (4 tokens per
    tile): many key steps and query tiles, the causal bound cutting inside a step."""
    batch = make_batch([(21, 11), (3, 40)], 4, 1, 32, torch.float32, device, block_size=8, seed=4)
    plan = plan_launch(batch.q, batch.k_cache, 2, 40, batch.block_table.shape[1] * 8, split=False,
                       tiles=TileConfig(block_m=16, block_n=16))  # fmt: skip
    assert plan.q_tiles == 10
    got = attend(*batch.args(), plan, causal=True, sm_scale=0.17)
    assert_attention_close(got, torch_ops.paged_attention(*batch.args(), sm_scale=0.17))


@pytest.mark.parametrize("num_splits", [2, 3, 5])
def test_split_kv_decode_equals_reference(num_splits, device):
    """Forced splits, some of them empty for the shorter sequences (lse = -inf partials merged away)."""
    batch = make_batch([(0, 1), (16, 1), (100, 1)], 8, 2, 32, torch.float32, device, seed=num_splits)
    max_kv = batch.block_table.shape[1] * batch.k_cache.shape[1]
    plan = plan_launch(batch.q, batch.k_cache, 3, 1, max_kv, split=True, num_splits=num_splits)
    assert plan.num_splits == num_splits and plan.split_size % plan.tiles.block_n == 0
    got = attend(*batch.args(), plan, causal=True, sm_scale=0.125)
    assert_attention_close(got, torch_ops.paged_attention(*batch.args(), sm_scale=0.125))


def test_small_decode_batch_dispatches_to_split_kv(device):
    """One sequence x one kv head cannot fill the machine: the entry point splits the keys."""
    batch = make_batch([(90, 1)], 4, 1, 32, torch.float16, device, seed=9)
    max_kv = batch.block_table.shape[1] * batch.k_cache.shape[1]
    assert plan_launch(batch.q, batch.k_cache, 1, 1, max_kv, split=True).num_splits > 1
    assert_attention_close(kernels.paged_attention(*batch.args()), torch_ops.paged_attention(*batch.args()))
