"""``tether run FILE.yaml --input key=value ...``: compile a workflow and run it.

Tools run in process (``LocalToolRunner``) or, with ``--broker mqtt://host:port``, on ``tether worker``
processes. LLM calls run on the local engine (``--model smollm2``, ``tiny``, a ``.gguf`` file or a checkpoint
directory; loaded only when the workflow has LLM calls) or on an OpenAI-compatible server (``--openai-url``).
Every run writes a JSONL trace.
``--json`` prints exactly ``{"run_id", "outputs", "trace"}``; a failing workflow exits non-zero with the
error on stderr (2: the workflow or its inputs are invalid, nothing ran; 1: a node failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tether.cli.common import add_engine_args, check_engine_flags, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a workflow YAML (a DAG of LLM and tool calls)")
    p.add_argument("file", type=Path, help="the workflow YAML (see docs/workflow-yaml.md)")
    p.add_argument(
        "--input", action="append", default=[], metavar="KEY=VALUE", help="a program input (repeatable)"
    )
    p.add_argument("--json", action="store_true", help='print {"run_id", "outputs", "trace"} as JSON')
    p.add_argument("--broker", default=None, help="call tools on MQTT workers at mqtt://host:port")
    p.add_argument(
        "--trace-dir",
        type=Path,
        default=None,
        help="where runs are recorded (default: $TETHER_HOME/runs, else ./.tether/runs; docs/tracing.md)",
    )
    p.add_argument(
        "--openai-url",
        default=None,
        help="an OpenAI-compatible server (base URL, e.g. .../v1); several, comma-separated, behind --router",
    )
    p.add_argument(
        "--router", default="program", help="with several --openai-url servers: program, pow2, prefix or session"
    )
    p.add_argument("--openai-api-key", default=None, help="bearer token (default: $OPENAI_API_KEY)")
    p.add_argument("--run-id", default=None, help="the run's (and program's) id; default: NAME-TIME-RANDOM")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar on stderr (nodes done, tokens generated)"
    )
    add_engine_args(p)
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from tether.dag.errors import DagError
    from tether.runtime.executor.errors import ExecutorError
    from tether.runtime.executor.workflow import prepare_workflow, run_workflow
    from tether.tools.errors import ToolError

    try:
        prepared = prepare_workflow(args.file, assignments=args.input, remote_tools=bool(args.broker))
    except (DagError, ToolError, ExecutorError) as exc:
        print(f"tether run: {exc}", file=sys.stderr)
        return 2
    compiled, bound = prepared
    problem = None if args.openai_url else check_engine_flags(args)
    if problem is not None:  # before a run is recorded
        print(f"tether run: {problem}", file=sys.stderr)
        return 2
    try:
        run = asyncio.run(
            run_workflow(
                compiled,
                bound,
                model=args.model,
                openai_url=args.openai_url,
                openai_api_key=args.openai_api_key,
                router=args.router,
                broker=args.broker,
                trace_dir=args.trace_dir,
                run_id=args.run_id,
                progress=None if args.quiet else sys.stderr,
                **({} if args.openai_url else engine_kwargs(args)),
            )
        )
    except (ExecutorError, DagError, ToolError) as exc:
        print(f"tether run: {exc}", file=sys.stderr)
        return 1
    jsonable = _jsonable(run.outputs)
    if args.json:
        print(json.dumps({"run_id": run.run_id, "outputs": jsonable, "trace": str(run.trace)}))
    else:
        for name, value in jsonable.items():
            print(f"{name}: {value if isinstance(value, str) else json.dumps(value)}")
        print(f"trace: {run.trace}", file=sys.stderr)
    return 0


def _jsonable(outputs: dict[str, Any]) -> dict[str, Any]:
    import pydantic_core

    return pydantic_core.to_jsonable_python(outputs, fallback=str)
