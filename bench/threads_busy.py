"""Batch-1 and batch-8 decode speed by thread setting, on a quiet and on a busy machine, side by side.

    .venv/bin/python bench/threads_busy.py [--model smollm2] [--busy 0,2] [--rounds 3] [--tokens 48]

Each variant is a fresh subprocess running the same greedy decode (EOS ignored) on ``LLM(model)``; variants
alternate within each round, and each figure is the median over rounds. ``--busy N`` starts N CPU-bound Python
loops beside it first (one per core for a busy 2-core machine) and stops them after. Variants:

- ``1``: ``torch.set_num_threads(1)``;
- ``2``: two intra-op threads, OpenMP's default wait policy (its workers spin between parallel regions);
- ``2-passive``: two threads with ``OMP_WAIT_POLICY=PASSIVE`` (workers sleep at once instead of spinning).

It prints tokens/s per variant and load, and the 1-minute load average at each load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import torch
from tether.runtime import LLM, SamplingParams
model, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
llm = LLM(model, num_kv_blocks=256)
params = SamplingParams(temperature=0.0, max_tokens=tokens, min_tokens=tokens, ignore_eos=True)
llm.generate(["warm up"], SamplingParams(temperature=0.0, max_tokens=4))
out = {}
for batch in (1, 8):
    prompts = [f"Write a story about the number {i}." for i in range(batch)]
    start = time.perf_counter()
    llm.generate(prompts, params)
    out[batch] = batch * tokens / (time.perf_counter() - start)
print(json.dumps(out))
"""

VARIANTS = {"1": (1, {}), "2": (2, {}), "2-passive": (2, {"OMP_WAIT_POLICY": "PASSIVE"})}


def run_variant(name: str, model: str, tokens: int) -> dict[str, float]:
    threads, extra = VARIANTS[name]
    env = {**os.environ, **extra}
    cmd = [sys.executable, "-c", CHILD, model, str(threads), str(tokens)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--busy", default="0,2", help="CPU-bound loops beside the engine, one setting per load")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    result = {}
    for busy in (int(b) for b in args.busy.split(",")):
        procs = burners(busy)
        try:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
            loads = []
            for _ in range(args.rounds):
                for name in VARIANTS:
                    runs[name].append(run_variant(name, args.model, args.tokens))
                    loads.append(os.getloadavg()[0])
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        print(f"busy={busy} (CPU-bound loops beside it), 1-min load average {min(loads):.1f}-{max(loads):.1f}:")
        result[busy] = {"load": [min(loads), max(loads)], "variants": {}}
        for name, rows in runs.items():
            med = {b: statistics.median(r[b] for r in rows) for b in ("1", "8")}
            result[busy]["variants"][name] = med
            print(f"  threads {name:<10} batch 1 {med['1']:6.1f} tok/s   batch 8 {med['8']:6.1f} tok/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
