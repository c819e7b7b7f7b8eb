"""Where the engine's torch work runs, and what it costs on a small CPU machine.

    .venv/bin/python bench/engine_threads.py [--model tiny] [--requests 30] [--steps 10]

Each variant runs the same requests, one after another: a prompt that grows by 30 tokens per turn (one
program, so its prefix is cached) and ``--steps`` decode steps. The variants are measured in one run, in
fresh subprocesses, so they can be compared side by side:

- ``sync``: ``LLMEngine`` stepped by the main thread (no other thread touches torch);
- ``async``: ``AsyncEngine.create`` (the model is loaded on the engine thread, which then steps it);
- ``async-loaded-elsewhere``: the model loaded on the main thread, then stepped by ``AsyncEngine``'s thread (two
  threads have run torch work: what ``AsyncEngine.create`` did before it loaded on the engine thread).

It also times the first request of a fresh engine, and importing xgrammar in a fresh interpreter: what that
first request paid when it imported xgrammar even unconstrained (the engine now imports it on the first
structured request only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

VARIANT = r"""
import asyncio, json, random, sys, time
from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints

variant, model, n, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = EngineConfig(model=model, policy="tether")
params = SamplingParams(max_tokens=steps, min_tokens=steps, ignore_eos=True, temperature=0.0)
rng = random.Random(0)

def prompts():
    ctx = [rng.randrange(256) for _ in range(800)]
    for k in range(n):
        ctx += [rng.randrange(256) for _ in range(30)]
        yield k, list(ctx)

def run_sync():
    engine = build_engine(config)
    times = []
    for k, ids in prompts():
        t = time.perf_counter()
        engine.add_request(ids, params, request_id=f"r{k}", hints=ProgramHints("p", k))
        while engine.has_unfinished():
            engine.step()
        times.append(time.perf_counter() - t)
    return times

async def run_async(loaded_elsewhere):
    engine = AsyncEngine(build_engine(config)) if loaded_elsewhere else await AsyncEngine.create(config)
    times = []
    for k, ids in prompts():
        t = time.perf_counter()
        await engine.generate(GenerateRequest(ids, params, hints=ProgramHints("p", k)))
        times.append(time.perf_counter() - t)
    await engine.close()
    return times

def import_xgrammar():
    import tether.runtime.engine.llm_engine  # torch and the engine, as a running engine has them
    t = time.perf_counter()
    import tether.runtime.engine.structured.compiler  # xgrammar
    return [time.perf_counter() - t]

async def first_request():
    engine = await AsyncEngine.create(config)
    t = time.perf_counter()
    await engine.generate(GenerateRequest([1, 2, 3], SamplingParams(max_tokens=1)))
    first = time.perf_counter() - t
    await engine.close()
    return [first]

if variant == "sync":
    times = run_sync()
elif variant == "first-request":
    times = asyncio.run(first_request())
elif variant == "import-xgrammar":
    times = import_xgrammar()
else:
    times = asyncio.run(run_async(variant == "async-loaded-elsewhere"))
print(json.dumps(times))
"""

VARIANTS = ("sync", "async", "async-loaded-elsewhere")


def measure(variant: str, model: str, requests: int, steps: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", VARIANT, variant, model, str(requests), str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"{args.requests} requests of {args.steps} decode steps each, model {args.model}; median ms per request")
    for variant in VARIANTS:
        times = measure(variant, args.model, args.requests, args.steps)[1:]  # the first one warms up
        print(f"{variant:24s} {1000 * statistics.median(times):8.2f}  (min {1000 * min(times):.2f})")
    (first,) = measure("first-request", args.model, 1, 1)
    print(f"{'first request (1 token)':24s} {1000 * first:8.2f}")
    (xgr,) = measure("import-xgrammar", args.model, 1, 1)
    print(f"{'importing xgrammar':24s} {1000 * xgr:8.2f}")


if __name__ == "__main__":
    main()
