"""The linear layers a prepared model runs: oneDNN-prepacked on CPU, plain ``F.linear`` otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tether.runtime.engine.models.linear import (
    DenseLinear,
    PackedLinear,
    can_pack,
    make_linear,
    to_column_major,
    wants_column_major,
)
from tether.runtime.engine.models.presets import build_tiny_model

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2}


def _weights(dtype: torch.dtype, bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(48, 32, generator=gen).to(dtype)
    b = torch.randn(48, generator=gen).to(dtype) if bias else None
    return w, b


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 32), (7, 32), (2, 3, 32)])
def test_packed_linear_equals_f_linear(dtype: torch.dtype, bias: bool, shape: tuple[int, ...]) -> None:
    w, b = _weights(dtype, bias)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    packed = make_linear(to_column_major(w) if dtype == torch.float32 else w, b, pack=True)
    assert isinstance(packed, PackedLinear)
    expected = F.linear(x.float(), w.float(), None if b is None else b.float())
    got = packed(x)
    assert got.shape == (*shape[:-1], 48) and got.dtype == dtype
    torch.testing.assert_close(got.float(), expected, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_one_float32_row_on_one_thread_uses_the_column_major_weight() -> None:
    w, b = _weights(torch.float32, bias=True)
    packed = PackedLinear.of(to_column_major(w), b)
    assert packed.single_row is not None and packed.single_row.stride() == (1, 48)
    x = torch.randn(1, 32, generator=torch.Generator().manual_seed(2))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = packed(x)
        torch.set_num_threads(2)
        two = packed(x)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(two, one, atol=1e-4, rtol=1e-4)
    assert PackedLinear.of(w.bfloat16(), None).single_row is None  # bf16: oneDNN at every size


def test_what_packs() -> None:
    w, _ = _weights(torch.float32, bias=False)
    assert can_pack(w) and can_pack(w.bfloat16())
    assert not can_pack(w.half())  # float16 runs as stored
    assert isinstance(make_linear(w.half(), None, pack=True), DenseLinear)
    assert isinstance(make_linear(w, None, pack=False), DenseLinear)
    assert wants_column_major(w, pack=True)
    assert not wants_column_major(w.bfloat16(), pack=True) and not wants_column_major(w, pack=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_packed_model_keeps_its_parameters_and_logits(dtype: torch.dtype) -> None:
    plain = build_tiny_model(0).to(dtype).prepare_for_inference(pack=False)
    packed = build_tiny_model(0).to(dtype).prepare_for_inference(pack=True)
    for (name, a), (_, b) in zip(plain.state_dict().items(), packed.state_dict().items()):
        assert torch.equal(a, b), name  # the same values; float32 ones stored column-major
    assert isinstance(packed.model.layers[0].self_attn.qkv, PackedLinear)
    assert isinstance(plain.model.layers[0].self_attn.qkv, DenseLinear)
    hidden = torch.randn(5, plain.config.hidden_size, generator=torch.Generator().manual_seed(3)).to(dtype)
    for layer_p, layer_q in zip(plain.model.layers, packed.model.layers):
        torch.testing.assert_close(
            layer_q.mlp(hidden).float(), layer_p.mlp(hidden).float(), atol=TOLERANCE[dtype], rtol=0.05
        )
    torch.testing.assert_close(
        packed.compute_logits(hidden), plain.compute_logits(hidden), atol=TOLERANCE[dtype], rtol=0.05
    )
