"""The C++ paged decode attention for CPU (tether/kernels/cpu_decode.cpp) against the plain torch reference."""

from __future__ import annotations

import pytest
import torch

from tether.kernels import cpu_decode, torch_ops

pytestmark = pytest.mark.skipif(not cpu_decode.load(), reason="the C++ kernel does not build here")


def _case(dtype: torch.dtype, lens: list[int], hq: int, hkv: int, d: int = 64, bs: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    nblocks = sum((n + bs - 1) // bs for n in lens) + 7
    perm = torch.randperm(nblocks, generator=g).tolist()
    width = max(1, max((n + bs - 1) // bs for n in lens))
    table = torch.zeros(len(lens), width, dtype=torch.int32)
    for s, n in enumerate(lens):
        for b in range((n + bs - 1) // bs):
            table[s, b] = perm.pop()
    k_cache = torch.randn(nblocks, bs, hkv, d, generator=g).to(dtype)
    v_cache = torch.randn(nblocks, bs, hkv, d, generator=g).to(dtype)
    q = torch.randn(len(lens), hq, d, generator=g).to(dtype)
    return q, k_cache, v_cache, table, torch.tensor(lens, dtype=torch.int32)


def _reference(q, k_cache, v_cache, table, lens, scale):
    out = []
    for s, n in enumerate(lens.tolist()):
        k = torch_ops.gather_kv(k_cache.float(), table[s], n)
        v = torch_ops.gather_kv(v_cache.float(), table[s], n)
        o, _ = torch_ops.dense_attention(q[s : s + 1].float(), k, v, causal=True, sm_scale=scale)
        out.append(o[0])
    return torch.stack(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("hq", "hkv"), [(9, 3), (4, 4), (8, 1)])
def test_matches_the_reference_over_permuted_partial_pages(dtype, hq, hkv):
    lens = [1, 15, 16, 17, 200, 333]
    q, kc, vc, table, kv_lens = _case(dtype, lens, hq, hkv)
    out = cpu_decode.paged_decode(q, kc, vc, table, kv_lens, 0.125)
    assert out.shape == q.shape and out.dtype == dtype
    expected = _reference(q, kc, vc, table, kv_lens, 0.125)
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: the output's own rounding
    torch.testing.assert_close(out.float(), expected, atol=tol, rtol=tol)


def test_threads_do_not_change_the_result():
    q, kc, vc, table, kv_lens = _case(torch.float32, [40, 7, 130, 64], 9, 3, seed=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cpu_decode.paged_decode(q, kc, vc, table, kv_lens, 0.2)
        torch.set_num_threads(2)
        two = cpu_decode.paged_decode(q, kc, vc, table, kv_lens, 0.2)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)  # one task per sequence: the same arithmetic on any thread


def test_an_empty_sequence_gives_zeros_and_bad_input_is_refused():
    q, kc, vc, table, kv_lens = _case(torch.float32, [0, 5], 4, 2)
    out = cpu_decode.paged_decode(q, kc, vc, table, kv_lens, 1.0)
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    with pytest.raises(RuntimeError, match="float32 or bfloat16"):
        cpu_decode.paged_decode(q.half(), kc.half(), vc.half(), table, kv_lens, 1.0)
    with pytest.raises(RuntimeError, match="int32"):
        cpu_decode.paged_decode(q, kc, vc, table.long(), kv_lens, 1.0)
    with pytest.raises(RuntimeError, match="share a dtype"):
        cpu_decode.paged_decode(q, kc.bfloat16(), vc.bfloat16(), table, kv_lens, 1.0)


def test_loading_the_kernel_leaves_subnormal_floats_alone():
    """The kernel is compiled with -ffast-math but not linked with it: linking it in adds crtfastmath.o, which
    sets flush-to-zero for the whole process when the library loads."""
    import subprocess
    import sys

    code = (
        "from tether.kernels import cpu_decode\n"
        "assert cpu_decode.load()\n"
        "import torch\n"
        "assert 5e-324 * 1.0 > 0.0, 'float64 denormals flushed'\n"
        "assert (torch.tensor([1e-40]) * 1.0).item() > 0.0, 'float32 denormals flushed'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
