"""``tether workload compile --from TRACE --programs N --seed S -o FILE``: a workload of compiled programs built
from an agent trace (``tether/runtime/replay/compiled.py``), written as a trace file ``tether replay`` reads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from tether.runtime.replay.compiled import DEFAULT_FORK, DEFAULT_MAX_WIDTH

    p = sub.add_parser("workload", help="build workloads (compiled programs from agent traces)")
    commands = p.add_subparsers(dest="workload_command", required=True)
    c = commands.add_parser(
        "compile",
        help="compiled programs (static structure, forked calls) with the trace's sizes and tool durations",
    )
    c.add_argument("--from", dest="source", required=True, metavar="TRACE", help="an agent trace (.jsonl)")
    c.add_argument("--programs", type=int, default=300, help="how many programs (default: 300)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--fork",
        type=float,
        default=DEFAULT_FORK,
        help=f"probability that a turn between the first and the last forks (default: {DEFAULT_FORK})",
    )
    c.add_argument(
        "--max-width",
        type=int,
        default=DEFAULT_MAX_WIDTH,
        help=f"most calls a forked turn runs side by side (default: {DEFAULT_MAX_WIDTH})",
    )
    c.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write the trace ('-': stdout)"
    )
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tether.runtime.replay.compiled import compile_programs
    from tether.runtime.replay.workload import WorkloadError, load_workload, program_to_json

    try:
        traces = load_workload(args.source)
        programs = compile_programs(
            traces, args.programs, args.seed, fork=args.fork, max_width=args.max_width
        )
    except (WorkloadError, ValueError) as exc:
        print(f"tether workload compile: {exc}", file=sys.stderr)
        return 2
    text = "".join(json.dumps(program_to_json(p)) + "\n" for p in programs)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    calls = sum(p.num_calls for p in programs)
    forked = sum(1 for p in programs for t in p.turns if t.parallel)
    print(
        f"tether workload compile: {len(programs)} programs, {calls} calls, {forked} forked turns -> "
        f"{args.output}",
        file=sys.stderr,
    )
    return 0
