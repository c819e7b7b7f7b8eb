"""Where a CPU decode step of SmolLM2 goes, and the layout and attention choices behind it.

    .venv/bin/python bench/cpu_step.py [--model smollm2] [--threads N]

1. Weight matmuls of SmolLM2-135M's shapes at batch 1 / 8 / 32, every layer's weights distinct (cold caches,
   as in a real step): float32 row-major (``[out, in]``, what ``nn.Linear`` stores), column-major (``[in, out]``
   contiguous, what ``prepare_for_inference`` keeps for one float32 row on one thread) and oneDNN-prepacked
   (``models/linear.py``, what it runs otherwise); bfloat16 row-major and prepacked.
2. Decode attention (SDPA, GQA 9/3 heads, D 64) in float32 against bfloat16, at 80 and 1024 cached tokens.
3. One real batch-1 decode step of the model (torch profiler): the matmuls' share of the forward pass, with
   the weights prepacked (the default) and as plain ``F.linear`` (``prepare_for_inference(pack=False)``).
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


def matmuls(batch: int, dtype: torch.dtype, layout: str) -> float:
    """``layout``: "row", "column" or "packed" (oneDNN, ``PackedLinear`` without its single-row path)."""
    from tether.runtime.engine.models.linear import PackedLinear

    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(o, i, generator=gen).to(dtype) for _ in range(LAYERS) for o, i in LAYER_SHAPES]
    weights.append(torch.randn(VOCAB, HIDDEN, generator=gen).to(dtype))
    xs = {i: torch.randn(batch, i, generator=gen).to(dtype) for i in (576, 1536)}
    if layout == "packed":
        packed = [(PackedLinear.of(w, None), w.shape[1]) for w in weights]
        # oneDNN at every size: without the single-row BLAS copy
        packed = [(PackedLinear(p.packed, None, p.in_features, p.out_features), k) for p, k in packed]
        return timed(lambda: [lin(xs[k]) for lin, k in packed])
    if layout == "column":
        weights = [w.t().contiguous().t() for w in weights]

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


def model_step(model: str, dtype: str, *, pack: bool = True) -> tuple[float, float, float]:
    """(load s, forward ms, matmul ms) of one batch-1 decode step; ``pack=False``: plain ``F.linear``."""
    from torch.profiler import ProfilerActivity, profile

    from tether.runtime import LLM, SamplingParams

    t0 = time.perf_counter()
    llm = LLM(model, num_kv_blocks=256, dtype=dtype)
    load = time.perf_counter() - t0
    engine = llm.engine
    if not pack:
        for module in engine.runner.model.modules():  # back to row-major [out, in], then unpacked
            if isinstance(module, torch.nn.Linear):
                module.weight.data = module.weight.data.contiguous()
        engine.runner.model.prepare_for_inference(pack=False)
    engine.add_request(list(range(100, 164)), SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True))
    for _ in range(8):
        engine.step()
    inputs = engine.runner.prepare(engine.scheduler.schedule())
    forward = timed(lambda: engine.runner.forward_logits(inputs), repeats=20)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            engine.runner.forward_logits(inputs)
    matmul_ops = ("aten::mm", "aten::addmm", "mkldnn::_linear_pointwise")
    mm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in matmul_ops)
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
        row, col, packed = (matmuls(batch, torch.float32, layout) for layout in ("row", "column", "packed"))
        bf16, bf16_packed = (matmuls(batch, torch.bfloat16, layout) for layout in ("row", "packed"))
        print(f"  batch {batch:>2}: fp32 row-major {row:6.1f}  column-major {col:6.1f}  oneDNN {packed:6.1f}  "
              f"bf16 row-major {bf16:6.1f}  oneDNN {bf16_packed:6.1f}")  # fmt: skip
    print("decode SDPA, 1 query, 9/3 heads, D 64, us per call:")
    for length in (80, 1024):
        fp32, bf16 = decode_sdpa(length, torch.float32), decode_sdpa(length, torch.bfloat16)
        print(f"  {length:>4} cached tokens: fp32 {fp32:6.1f}  bf16 {bf16:6.1f} ({bf16 / fp32:.1f}x)")
    for dtype, pack in (("float32", True), ("float32", False), ("bfloat16", True), ("bfloat16", False)):
        load, forward, mm = model_step(args.model, dtype, pack=pack)
        layout = "" if pack else " (plain F.linear, row-major)"
        print(f"{args.model} {dtype}{layout}: load {load:.1f} s; batch-1 decode forward {forward:.1f} ms, "
              f"of which weight matmuls {mm:.1f} ms ({mm / forward:.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
