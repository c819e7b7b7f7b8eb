"""Where a CPU decode step of SmolLM2 goes, and the layout and attention choices behind it.

    .venv/bin/python bench/cpu_step.py [--model smollm2] [--threads N]

1. Weight matmuls of SmolLM2-135M's shapes at batch 1 / 8 / 32, every layer's weights distinct (cold caches,
   as in a real step), float32 row-major (``[out, in]``, what ``nn.Linear`` stores) against column-major
   (``[in, out]`` contiguous, what ``prepare_for_inference`` stores on CPU in float32), and bfloat16 row-major.
2. Decode attention (SDPA, GQA 9/3 heads, D 64) in float32 against bfloat16, at 80 and 1024 cached tokens.
3. One real batch-1 decode step of the model (torch profiler): the matmuls' share of the forward pass; in
   float32 also with the weights put back row-major (the engine-level effect of the column-major layout).
4. Load time of the model (first load converts a GGUF file; later loads read the cached safetensors).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# SmolLM2-135M: hidden 576, 9 / 3 heads of 64, MLP 1536, 30 layers, vocabulary 49152 (tied).
LAYER_SHAPES = [(960, 576), (576, 576), (3072, 576), (576, 1536)]  # fused qkv, o, fused gate/up, down
LAYERS, VOCAB, HIDDEN = 30, 49152, 576


def timed(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median milliseconds of ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def matmuls(batch: int, dtype: torch.dtype, column_major: bool) -> float:
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(o, i, generator=gen).to(dtype) for _ in range(LAYERS) for o, i in LAYER_SHAPES]
    weights.append(torch.randn(VOCAB, HIDDEN, generator=gen).to(dtype))
    if column_major:
        weights = [w.t().contiguous().t() for w in weights]
    xs = {i: torch.randn(batch, i, generator=gen).to(dtype) for i in (576, 1536)}

    def step() -> None:
        for w in weights:
            F.linear(xs[w.shape[1]], w)

    return timed(step)


def decode_sdpa(length: int, dtype: torch.dtype) -> float:
    q = torch.randn(1, 9, 1, 64).to(dtype)
    k, v = torch.randn(1, 3, length, 64).to(dtype), torch.randn(1, 3, length, 64).to(dtype)
    return timed(  # ms for 1000 calls = us per call
        lambda: [F.scaled_dot_product_attention(q, k, v, enable_gqa=True) for _ in range(1000)]
    )


def row_major(net: torch.nn.Module) -> None:
    """Undo the column-major layout of ``prepare_for_inference`` (same values, ``[out, in]`` contiguous)."""
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight.data = module.weight.data.contiguous()
    for layer in net.model.layers:
        layer.self_attn.fuse(column_major=False)
        layer.mlp.fuse(column_major=False)


def model_step(model: str, dtype: str, *, rows: bool = False) -> tuple[float, float, float]:
    """(load s, forward ms, matmul ms) of one batch-1 decode step; ``rows``: weights row-major."""
    from torch.profiler import ProfilerActivity, profile

    from tether.runtime import LLM, SamplingParams

    t0 = time.perf_counter()
    llm = LLM(model, num_kv_blocks=256, dtype=dtype)
    load = time.perf_counter() - t0
    engine = llm.engine
    if rows:
        row_major(engine.runner.model)
    engine.add_request(list(range(100, 164)), SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True))
    for _ in range(8):
        engine.step()
    inputs = engine.runner.prepare(engine.scheduler.schedule())
    forward = timed(lambda: engine.runner.forward_logits(inputs), repeats=20)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            engine.runner.forward_logits(inputs)
    mm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm"))
    engine.abort(next(iter(engine._seqs)))
    engine.check_integrity()
    return load, forward, mm / 10 / 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}")
    print("weight matmuls of one step (30 layers + lm_head), ms:")
    for batch in (1, 8, 32):
        row = matmuls(batch, torch.float32, column_major=False)
        col = matmuls(batch, torch.float32, column_major=True)
        bf16 = matmuls(batch, torch.bfloat16, column_major=False)
        print(f"  batch {batch:>2}: fp32 row-major {row:6.1f}  column-major {col:6.1f} ({row / col:.2f}x)  "
              f"bf16 {bf16:6.1f}")  # fmt: skip
    print("decode SDPA, 1 query, 9/3 heads, D 64, us per call:")
    for length in (80, 1024):
        fp32, bf16 = decode_sdpa(length, torch.float32), decode_sdpa(length, torch.bfloat16)
        print(f"  {length:>4} cached tokens: fp32 {fp32:6.1f}  bf16 {bf16:6.1f} ({bf16 / fp32:.1f}x)")
    for dtype, rows in (("float32", False), ("float32", True), ("bfloat16", False)):
        load, forward, mm = model_step(args.model, dtype, rows=rows)
        layout = " (weights row-major)" if rows else ""
        print(f"{args.model} {dtype}{layout}: load {load:.1f} s; batch-1 decode forward {forward:.1f} ms, "
              f"of which weight matmuls {mm:.1f} ms ({mm / forward:.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
