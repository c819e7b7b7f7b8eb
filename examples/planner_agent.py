"""The LLMCompiler planner on SmolLM2 over the example tools: plans, observations, the answer, and whether it
is right.

    python examples/planner_agent.py                      # a k=2 question from bench/agent_questions.py
    python examples/planner_agent.py --k 3 --index 4
    python examples/planner_agent.py --question "What is the total population of Paris and Quito?"
    python examples/planner_agent.py --max-replans 0 --trace-dir out/demo/runs   # make demo's short run
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.agent_questions import check_answer, make_questions  # noqa: E402
from examples.agent_examples import PLAN_EXAMPLES  # noqa: E402
from examples.agent_tools import AGENT_TOOLS, set_latency  # noqa: E402
from tether.agents.planner import format_plan  # noqa: E402
from tether.agents.planner.agent import Planner  # noqa: E402
from tether.agents.planner.prompts import render_value  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--question", help="ask this instead of a generated question (no correctness check)")
    ap.add_argument("--k", type=int, default=2, help="lookups per generated question")
    ap.add_argument("--index", type=int, default=0, help="which generated question")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-replans", type=int, default=2)
    ap.add_argument("--latency", default="none", help='tool latency: "none" or "realistic"')
    ap.add_argument("--trace-dir", default=None, help="where the run is recorded (default: ./.tether/runs)")
    args = ap.parse_args()

    set_latency(args.latency)
    question = None
    if args.question:
        text = args.question
    else:
        question = make_questions(k=args.k, n=args.index + 1, seed=args.seed)[args.index]
        text = question.text
    print(f"Question: {text}")
    where = {"trace_dir": args.trace_dir} if args.trace_dir else {}
    planner = Planner(
        AGENT_TOOLS, model=args.model, max_replans=args.max_replans, examples=PLAN_EXAMPLES, **where
    )
    async with planner:
        result = await planner.run(text)
        trace_path = planner.runtime.trace_path if planner.runtime else None
    for i, tasks in enumerate(result.plans):
        print(f"\n-- plan {i + 1} --\n{format_plan(tasks) if tasks else '(nothing parsed)'}")
    print("\n-- observations (in the order they finished) --")
    for obs in result.observations:
        shown = f"error: {obs.error}" if obs.error else render_value(obs.value, 200)
        print(f"task {obs.task} {obs.tool}({obs.args}) -> {shown}")
    print(f"\nAnswer: {result.answer}")
    if question is not None:
        print(f"Expected: {question.expected}  correct: {check_answer(question, result.answer)}")
    calls = ", ".join(
        f"{c.role} {c.prompt_tokens}+{c.completion_tokens} tok {c.seconds:.1f}s" for c in result.llm_calls
    )
    print(f"Replans: {result.replans}  LLM calls: {calls}")
    print(f"Seconds: {result.seconds:.1f}  trace: {trace_path} (program {result.trace_id})")


if __name__ == "__main__":
    asyncio.run(main())
