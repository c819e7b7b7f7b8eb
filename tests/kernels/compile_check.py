"""Compile the kernels for real GPU targets on a machine without one (``python -m tests.kernels.compile_check``,
with ``TRITON_INTERPRET`` unset): Triton lowers to PTX and the bundled ptxas builds the cubin, so what the
interpreter lets pass (dot shapes, loop bounds, types) must hold here. Prints one JSON line per kernel with its
registers, spill stack and shared memory (read with the bundled cuobjdump).

Arguments are typed as the JIT would specialise them on a launch: strides equal to 1 become the constant 1,
pointers and other strides are marked divisible by 16.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tether.kernels.attention_kernel import paged_attention_kernel
from tether.kernels.merge_kernels import _merge_two_kernel, _reduce_splits_kernel
from tether.kernels.store import _store_kv_kernel


def compile_kernel(fn, pointers: dict[str, str], consts: dict, unit: tuple[str, ...], arch: int, warps: int,
                   stages: int) -> dict:  # fmt: skip
    consts = {**consts, **dict.fromkeys(unit, 1)}
    sig = {n: "constexpr" if n in consts else pointers.get(n, "i32") for n in fn.arg_names}
    hinted = [
        i for i, n in enumerate(fn.arg_names) if n not in consts and (n in pointers or n.startswith("s"))
    ]
    attrs = {(i,): [["tt.divisibility", 16]] for i in hinted if sig[fn.arg_names[i]] != "fp32"}
    compiled = triton.compile(
        ASTSource(fn, sig, consts, attrs), target=GPUTarget("cuda", arch, 32),
        options={"num_warps": warps, "num_stages": stages},
    )  # fmt: skip
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([str(cuobjdump), "-res-usage", f.name], capture_output=True, text=True).stdout
    regs, stack = (int(re.search(rf"{key}:(\d+)", usage).group(1)) for key in ("REG", "STACK"))
    return dict(kernel=fn.__name__, arch=arch, regs=regs, stack=stack, shared=compiled.metadata.shared)


def attention(dtype: str, group: int, head_dim: int, num_splits: int, tiles, arch: int) -> dict:
    from tether.kernels.tiles import block_d

    pointers = dict.fromkeys(("q_ptr", "k_cache_ptr", "v_cache_ptr"), f"*{dtype}")
    pointers.update(o_ptr=f"*{dtype}" if num_splits == 1 else "*fp32", lse_ptr="*fp32", sm_scale_log2="fp32")
    pointers.update(dict.fromkeys(("block_table_ptr", "cu_seqlens_q_ptr", "kv_lens_ptr"), "*i32"))
    consts = dict(
        GROUP=group, PAGE_SIZE=16, BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=block_d(head_dim),
        NUM_SPLITS=num_splits, CAUSAL=True, DOT_PRECISION="tf32x3" if dtype == "fp32" else "tf32",
    )  # fmt: skip
    unit = ("stride_qd", "stride_kd", "stride_vd", "stride_btb", "stride_od")
    out = compile_kernel(
        paged_attention_kernel, pointers, consts, unit, arch, tiles.num_warps, tiles.num_stages
    )
    return dict(out, dtype=dtype, head_dim=head_dim, group=group, splits=num_splits)


def main() -> None:
    from tether.kernels.tiles import attention_tiles

    for dtype, group, head_dim, decode, arch in [
        ("bf16", 4, 128, False, 90),  # Llama-3-8B prefill on Hopper
        ("bf16", 4, 128, True, 90),  # ... its split-KV decode
        ("fp16", 8, 64, True, 80),  # Ampere
        ("fp32", 4, 32, False, 90),  # the fp32 test path (tf32x3 dots)
    ]:
        tiles = attention_tiles(head_dim, group, 4 if dtype == "fp32" else 2, decode, interpreted=False)
        print(json.dumps(attention(dtype, group, head_dim, 4 if decode else 1, tiles, arch)), flush=True)
    merge_ptrs = dict(
        oa_ptr="*fp32", ob_ptr="*fp32", o_ptr="*bf16", la_ptr="*fp32", lb_ptr="*fp32", lse_ptr="*fp32"
    )
    print(
        json.dumps(compile_kernel(_merge_two_kernel, merge_ptrs, dict(BLOCK_R=32, BLOCK_D=128), (), 90, 4, 1))
    )
    reduce_ptrs = dict(op_ptr="*fp32", lp_ptr="*fp32", o_ptr="*bf16", lse_ptr="*fp32")
    reduce = compile_kernel(_reduce_splits_kernel, reduce_ptrs, dict(BLOCK_S=8, BLOCK_D=128), (), 90, 4, 1)
    print(json.dumps(reduce))
    store_ptrs = dict(k_ptr="*bf16", v_ptr="*bf16", k_cache_ptr="*bf16", v_cache_ptr="*bf16", slot_ptr="*i64")
    unit = ("s_kd", "s_vd", "s_cd")
    store = compile_kernel(
        _store_kv_kernel, store_ptrs, dict(PAGE_SIZE=16, BLOCK_T=16, BLOCK_D=128), unit, 90, 4, 1
    )
    print(json.dumps(store))


if __name__ == "__main__":
    sys.exit(main())
