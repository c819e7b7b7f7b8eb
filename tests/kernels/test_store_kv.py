"""The Triton ``store_kv`` writes exactly the reference's slots and skips negative ones."""

from __future__ import annotations

import pytest
import torch

from tests.kernels.conftest import kernel_dtypes
from tether.kernels import torch_ops

pytest.importorskip("triton")

import tether.kernels as kernels  # noqa: E402


@pytest.mark.parametrize("dtype", kernel_dtypes(), ids=str)
@pytest.mark.parametrize("slot_dtype", [torch.int32, torch.int64], ids=str)
def test_store_kv_equals_reference(slot_dtype, dtype, device):
    g = torch.Generator().manual_seed(0)
    k, v = (torch.randn(11, 2, 40, generator=g).to(dtype).to(device) for _ in range(2))
    slots = torch.randperm(6 * 8, generator=g)[:11].to(slot_dtype)
    slots[3] = slots[7] = -1
    slots = slots.to(device)
    kc, vc = (torch.randn(6, 8, 2, 40, generator=g).to(dtype).to(device) for _ in range(2))
    ek, ev = kc.clone(), vc.clone()
    kernels.store_kv(k, v, kc, vc, slots)
    torch_ops.store_kv(k, v, ek, ev, slots)
    assert torch.equal(kc, ek) and torch.equal(vc, ev)


def test_store_kv_from_strided_views(device):
    """k/v as slices of a fused projection (non-contiguous rows), as a model layer passes them."""
    kv = torch.randn(5, 2, 4, 16).to(device)  # (T, k|v, Hkv, D)
    k, v = kv[:, 0], kv[:, 1]
    kc, vc = torch.zeros(2, 4, 4, 16, device=device), torch.zeros(2, 4, 4, 16, device=device)
    slots = torch.tensor([7, 0, 3, 4, -1], device=device)
    kernels.store_kv(k, v, kc, vc, slots)
    assert torch.equal(kc.view(8, 4, 16)[[7, 0, 3, 4]], k[:4]) and torch.equal(
        vc.view(8, 4, 16)[[7, 0, 3, 4]], v[:4]
    )
    assert kc.view(8, 4, 16)[[1, 2, 5, 6]].abs().sum() == 0
