"""Executor overhead per node: a DAG of no-op tools run by the executor, wall time over node count.

    .venv/bin/python bench/executor_overhead.py [--nodes 10000] [--repeats 3] [--json FILE]

Shapes (all with ``--nodes`` nodes): ``wide`` (independent nodes), ``chain`` (each node needs the one
before), ``layered`` (layers of ``sqrt(n)`` nodes, each node needing two of the layer before, seeded).
Each shape runs an async no-op tool with and without a JSONL trace, and a sync no-op tool (thread pool).
The baseline row is ``LocalToolRunner.call`` alone (validation + invoke of the same no-op tool, awaited one
after another): executor overhead is a row's figure minus that. Compile time is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tether.dag import Program, ToolCall, compile_program  # noqa: E402
from tether.runtime.executor import Executor  # noqa: E402
from tether.runtime.tracing import JsonlTraceWriter  # noqa: E402
from tether.tools import LocalToolRunner, ToolRegistry, tool  # noqa: E402


@tool
async def noop() -> None:
    return None


@tool
def noop_sync() -> None:
    return None


REGISTRY = ToolRegistry([noop, noop_sync])


def build(shape: str, n: int, tool_name: str, seed: int = 0) -> Program:
    nodes: list[ToolCall] = []
    if shape == "wide":
        nodes = [ToolCall(id=f"n{i}", tool=tool_name) for i in range(n)]
    elif shape == "chain":
        nodes = [ToolCall(id=f"n{i}", tool=tool_name, depends=(f"n{i - 1}",) if i else ()) for i in range(n)]
    else:
        rng = random.Random(seed)
        width = max(1, int(math.sqrt(n)))
        for i in range(n):
            layer = i // width
            prev = range((layer - 1) * width, layer * width) if layer else range(0)
            deps = tuple(f"n{j}" for j in sorted(rng.sample(prev, min(2, len(prev)))))
            nodes.append(ToolCall(id=f"n{i}", tool=tool_name, depends=deps))
    return Program(f"{shape}-{n}", nodes=nodes)


async def time_run(program: Program, trace_dir: Path | None) -> tuple[float, float]:
    """(compile seconds, run seconds) for one fresh compile and run."""
    t0 = time.perf_counter()
    compiled = compile_program(program, REGISTRY)
    t1 = time.perf_counter()
    trace = JsonlTraceWriter(trace_dir / f"{program.name}-{t1}.jsonl") if trace_dir else None
    result = await Executor(LocalToolRunner(REGISTRY), trace=trace).run(compiled)
    t2 = time.perf_counter()
    if trace is not None:
        trace.close()
    assert len(result.node_outputs) == len(program)
    return t1 - t0, t2 - t1


async def baseline(n: int) -> float:
    runner = LocalToolRunner(REGISTRY)
    t0 = time.perf_counter()
    for i in range(n):
        await runner.call("noop", {}, call_id=str(i))
    return time.perf_counter() - t0


async def main(args: argparse.Namespace) -> list[dict]:
    rows: list[dict] = []
    n = args.nodes
    runs = [(shape, "noop", False) for shape in ("wide", "chain", "layered")]
    runs += [("layered", "noop", True), ("layered", "noop_sync", False)]
    with tempfile.TemporaryDirectory() as tmp:
        for shape, tool_name, traced in runs:
            program_runs = [
                await time_run(build(shape, n, tool_name), Path(tmp) if traced else None)
                for _ in range(args.repeats)
            ]
            run_s = statistics.median(r for _, r in program_runs)
            compile_s = statistics.median(c for c, _ in program_runs)
            rows.append(
                {
                    "shape": shape,
                    "tool": tool_name,
                    "trace": traced,
                    "nodes": n,
                    "run_s": run_s,
                    "us_per_node": 1e6 * run_s / n,
                    "compile_us_per_node": 1e6 * compile_s / n,
                }
            )
    base = statistics.median([await baseline(n) for _ in range(args.repeats)])
    rows.append({"shape": "baseline: runner.call only", "tool": "noop", "trace": False, "nodes": n,
                 "run_s": base, "us_per_node": 1e6 * base / n, "compile_us_per_node": 0.0})  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    print("| shape | tool | trace | nodes | run (s) | us / node | compile us / node |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['tool']} | {'jsonl' if r['trace'] else 'off'} | {r['nodes']:,} | "
            f"{r['run_s']:.3f} | {r['us_per_node']:.1f} | {r['compile_us_per_node']:.1f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the median is reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args()
    rows = asyncio.run(main(args))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
