"""What the GPU needs holds for every tile the kernels can pick; the interpreter is really in use here; the
package imports without triton and refuses to run where it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tether.kernels.tiles import TileConfig, attention_tiles, block_d, choose_num_splits, split_size


@pytest.mark.parametrize("head_dim", [16, 32, 40, 64, 80, 96, 128, 256])
@pytest.mark.parametrize("group", [1, 4, 8, 32])
@pytest.mark.parametrize("elem_bytes", [2, 4])
@pytest.mark.parametrize("decode", [True, False])
def test_every_tile_is_a_power_of_two_of_at_least_16(head_dim, group, elem_bytes, decode):
    for interpreted in (True, False):
        tiles = attention_tiles(head_dim, group, elem_bytes, decode, interpreted)
        for size in (tiles.block_m, tiles.block_n, block_d(head_dim)):
            assert size >= 16 and size & (size - 1) == 0
        assert block_d(head_dim) >= head_dim and tiles.tokens_per_tile(group) >= 1


def test_tile_config_refuses_what_tl_dot_cannot_take():
    with pytest.raises(AssertionError, match="power of two"):
        TileConfig(block_m=8, block_n=64)
    with pytest.raises(AssertionError, match="power of two"):
        TileConfig(block_m=64, block_n=48)


def test_split_rule():
    assert choose_num_splits(programs=264, max_kv_len=32768, num_sms=132, min_keys_per_split=256) == 1
    assert choose_num_splits(programs=8, max_kv_len=32768, num_sms=132, min_keys_per_split=256) == 33
    assert choose_num_splits(programs=8, max_kv_len=1000, num_sms=132, min_keys_per_split=256) == 4
    assert choose_num_splits(programs=8, max_kv_len=200, num_sms=132, min_keys_per_split=256) == 1
    assert split_size(1000, 4, 64) == 256 and split_size(1, 3, 64) == 64


def test_kernels_run_in_the_interpreter_here():
    pytest.importorskip("triton")
    from tether.kernels.runtime import interpreted

    assert interpreted() == (os.environ["TRITON_INTERPRET"] == "1")


def test_bf16_is_refused_by_the_interpreter():
    pytest.importorskip("triton")
    import tether.kernels as kernels
    from tether.kernels.runtime import interpreted

    if not interpreted():
        pytest.skip("compiled kernels run bf16")
    q = torch.zeros(1, 1, 16, dtype=torch.bfloat16)
    cache = torch.zeros(1, 16, 1, 16, dtype=torch.bfloat16)
    i32 = torch.zeros(1, 1, dtype=torch.int32)
    cu = torch.tensor([0, 1], dtype=torch.int32)
    with pytest.raises(kernels.KernelUnavailableError, match="bfloat16"):
        kernels.paged_attention(q, cache, cache, i32, cu, torch.ones(1, dtype=torch.int32))


def test_bad_arguments_are_named():
    import tether.kernels as kernels

    q = torch.zeros(2, 3, 16)
    cache = torch.zeros(4, 16, 2, 16)
    table, cu, lens = (
        torch.zeros(1, 1, dtype=torch.int32),
        torch.tensor([0, 2], dtype=torch.int32),
        torch.ones(1),
    )
    with pytest.raises(kernels.KernelInputError, match="Hq=3 is not a multiple of Hkv=2"):
        kernels.paged_attention(q, cache, cache, table, cu, lens.int())
    with pytest.raises(kernels.KernelInputError, match="kv_lens must be int32"):
        kernels.paged_attention(torch.zeros(2, 4, 16), cache, cache, table, cu, lens)


SCRIPT = """
import sys
sys.modules["triton"] = None  # as on a machine without triton
import tether.kernels as kernels; import tether.kernels.torch_ops; import tether.kernels.tiles
from tether.runtime.engine.attention import get_backend
get_backend("torch")
try:
    kernels.store_kv(None, None, None, None, None)
except ImportError:
    print("no-triton-ok")
del sys.modules["triton"]
import torch
q = torch.zeros(1, 1, 16); cache = torch.zeros(1, 16, 1, 16)
args = (torch.zeros(1, 1, dtype=torch.int32), torch.tensor([0, 1], dtype=torch.int32), torch.ones(1, dtype=torch.int32))
try:
    kernels.paged_attention(q, cache, cache, *args)
except kernels.KernelUnavailableError as e:
    print("unavailable:", e)
"""


@pytest.mark.slow  # a subprocess importing torch with triton hidden
def test_imports_without_triton_and_refuses_cpu_tensors_when_compiled():
    pytest.importorskip("triton")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no-triton-ok" in out.stdout
    assert "unavailable: Triton kernels need CUDA tensors (got cpu)" in out.stdout
