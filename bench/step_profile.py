"""Where the milliseconds of one decode step go: model math against everything else.

    .venv/bin/python bench/step_profile.py [--model smollm2] [--dtype float32] [--batch 8] [--threads 1]

Runs ``--batch`` greedy requests of 128 random prompt tokens to steady decode, then times ``--steps`` engine
steps. Each phase of ``LLMEngine.step`` is timed by wrapping it (this script only; the engine is unchanged):

- schedule:     ``Scheduler.schedule`` (policy, admission, block allocation)
- prepare:      ``ModelRunner.prepare`` (flat inputs, slot mapping, block tables to tensors)
- forward:      ``ModelRunner.forward_logits``, split by ``torch.profiler`` into
    - matmuls:      the linear layers and the vocabulary projection (oneDNN or BLAS kernels)
    - attention:    the attention kernels, the KV stores into the paged cache and the page gathers
    - other ops:    every other aten op (norms, RoPE, SiLU, residual adds, casts, views); compiled, the
                    generated kernels that fuse them (the compiled graph's own time)
    - Python:       the forward's wall time less the time inside ops (module calls, dispatch; compiled,
                    Dynamo's guards)
- sample:       the sampler (argmax or top-k/p, structured masks and banned tokens)
- the rest:     the step's wall time less the above (scheduler update, stop checks, outputs, tracing)

"Model math" is matmuls + attention. Prints a table of medians per step in milliseconds and the share.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

MATMUL_OPS = {"mkldnn::_linear_pointwise", "aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"}
ATTENTION_PREFIXES = ("aten::_scaled_dot_product", "aten::index_select", "aten::index_copy_", "tether")


def _timed(store: dict[str, list[float]], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store[key].append(time.perf_counter() - t0)

    return wrapper


def op_split(prof: Any, steps: int) -> dict[str, float]:
    """Milliseconds per step inside matmul, attention and other ops (self time, so nothing counts twice)."""
    split = {"matmuls": 0.0, "attention": 0.0, "other ops": 0.0}
    for event in prof.key_averages():
        if event.key in MATMUL_OPS:
            kind = "matmuls"
        elif event.key.startswith(ATTENTION_PREFIXES):
            kind = "attention"
        elif event.key.startswith(("aten::", "mkldnn::", "prims::", "## Call CompiledFxGraph")):
            kind = "other ops"  # a compiled graph's own time is its fused generated kernels
        else:
            continue  # record_function ranges and profiler bookkeeping
        split[kind] += event.self_cpu_time_total / 1e3 / steps
    return split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--compile", action="store_true", help="the compiled forward (enforce_eager=False)")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from tether.runtime import LLM, SamplingParams

    llm = LLM(
        args.model, dtype=args.dtype, num_threads=args.threads, enforce_eager=False if args.compile else None
    )
    engine = llm.engine
    rng = random.Random(0)
    params = SamplingParams(temperature=0.0, max_tokens=args.steps * 3 + 16, ignore_eos=True)
    for _ in range(args.batch):
        engine.add_request([rng.randrange(100, 30000) for _ in range(128)], params)
    for _ in range(8):  # prefill, then warm decode (and any compile)
        engine.step()

    phases: dict[str, list[float]] = defaultdict(list)
    runner, scheduler = engine.runner, engine.scheduler
    scheduler.schedule = _timed(phases, "schedule", scheduler.schedule)
    runner.prepare = _timed(phases, "prepare", runner.prepare)
    runner.forward_logits = _timed(phases, "forward", runner.forward_logits)
    runner.sampler = _timed(phases, "sample", runner.sampler)
    steps: list[float] = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        engine.step()
        steps.append(time.perf_counter() - t0)
    ms = {k: 1e3 * statistics.median(v) for k, v in phases.items()}  # before the profiler slows the ops
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            engine.step()
    split = op_split(prof, args.steps)

    step = 1e3 * statistics.median(steps)
    ops = sum(split.values())
    rows = [
        ("schedule", ms["schedule"]),
        ("prepare", ms["prepare"]),
        ("forward: matmuls", split["matmuls"] * ms["forward"] / max(ops, ms["forward"])),
        ("forward: attention", split["attention"] * ms["forward"] / max(ops, ms["forward"])),
        ("forward: other ops", split["other ops"] * ms["forward"] / max(ops, ms["forward"])),
        ("forward: Python", max(0.0, ms["forward"] - ops)),
        ("sample", ms["sample"]),
    ]
    rows.append(("the rest of the step", max(0.0, step - sum(v for _, v in rows))))
    print(
        f"{args.model} {args.dtype}, batch {args.batch}, {args.threads} thread(s), "
        f"{'compiled' if engine.runner.compiled is not None else 'eager'}; torch {torch.__version__}; "
        f"median of {args.steps} steps: {step:.2f} ms ({args.batch / step * 1e3:.1f} tok/s)"
    )
    print("| phase | ms per step | share |\n|---|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} | {100 * value / step:.1f}% |")
    math = rows[2][1] + rows[3][1]
    print(f"| **model math** (matmuls + attention) | {math:.2f} | {100 * math / step:.1f}% |")
    for seq_id in list(engine._seqs):
        engine.abort(seq_id)
    engine.check_integrity()


if __name__ == "__main__":
    main()
