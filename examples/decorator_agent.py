"""A decorator agent over the example tools: look up several cities' populations in parallel, add them up
with the calculator, and have the model phrase the answer.

    python examples/decorator_agent.py --model smollm2 [--cities Paris Berlin Rome] [--latency none]

Prints the answer, the recorded DAG (nodes and data edges) and the trace file. The lookups start at once
(no gather): they overlap, so the run takes about one lookup's latency, not the sum.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from examples.agent_tools import AGENT_TOOLS, calculator, lookup, set_latency  # noqa: E402
from tether.agents.decorator import agent, llm  # noqa: E402
from tether.agents.runtime import AgentRuntime  # noqa: E402


@agent(name="city_populations")
async def city_populations(cities: list[str]) -> dict:
    counts = [lookup(table="cities", key=c, field="population") for c in cities]  # all running now
    total = calculator(expression=" + ".join(f"{n}" for n in counts))  # waits for every lookup
    facts = "\n".join(f"- {c}: {n}" for c, n in zip(cities, counts, strict=True))
    answer = llm(
        f"Population figures:\n{facts}\nTotal: {total}\n\n"
        f"In one sentence, state the combined population of {', '.join(cities)}.",
        system="You are a concise assistant. Use the numbers given.",
        max_tokens=64,
    )
    return {"total": await total, "answer": await answer}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--cities", nargs="+", default=["Paris", "Berlin", "Rome"])
    parser.add_argument("--latency", choices=["realistic", "none"], default="realistic")
    args = parser.parse_args()
    set_latency(args.latency)
    async with await AgentRuntime.create(AGENT_TOOLS, model=args.model) as rt:
        start = time.perf_counter()
        run = await city_populations.execute(args.cities, runtime=rt)
        seconds = time.perf_counter() - start
    print(f"answer: {run.value['answer'].strip()}")
    print(f"total (calculator): {run.value['total']:.0f}  in {seconds:.2f} s")
    print(f"program {run.trace_id}: {len(run.program)} nodes")
    for node_id, node in run.program.nodes.items():
        print(f"  {node_id}: {node.kind} {getattr(node, 'tool', '')}".rstrip())
    for a, b, kind in run.edges:
        print(f"  {a} -> {b} ({kind})")
    print(f"trace: {run.trace_path}")


if __name__ == "__main__":
    asyncio.run(main())
