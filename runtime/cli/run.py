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
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from runtime.cli.common import add_engine_args, engine_kwargs


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
    p.add_argument("--openai-url", default=None, help="an OpenAI-compatible server (base URL, e.g. .../v1)")
    p.add_argument("--openai-api-key", default=None, help="bearer token (default: $OPENAI_API_KEY)")
    p.add_argument("--run-id", default=None, help="the run's (and program's) id; default: NAME-TIME-RANDOM")
    add_engine_args(p)
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from dag.errors import DagError
    from runtime.executor.errors import ExecutorError
    from tools.errors import ToolError

    try:
        prepared = _prepare(args)
    except (DagError, ToolError, ExecutorError) as exc:
        print(f"tether run: {exc}", file=sys.stderr)
        return 2
    try:
        outputs, trace = asyncio.run(_run(args, *prepared))
    except (ExecutorError, DagError, ToolError) as exc:
        print(f"tether run: {exc}", file=sys.stderr)
        return 1
    run_id = prepared[2]
    jsonable = _jsonable(outputs)
    if args.json:
        print(json.dumps({"run_id": run_id, "outputs": jsonable, "trace": str(trace)}))
    else:
        for name, value in jsonable.items():
            print(f"{name}: {value if isinstance(value, str) else json.dumps(value)}")
        print(f"trace: {trace}", file=sys.stderr)
    return 0


def _prepare(args: argparse.Namespace) -> tuple[Any, dict[str, Any], str]:
    """Load, compile and bind inputs: everything that can fail before anything runs."""
    from dag.compiler import compile_program
    from dag.inputs import bind_inputs, parse_assignments
    from dag.yaml_loader import load_workflow
    from tools.registry import ToolRegistry

    program = load_workflow(args.file)
    registry = ToolRegistry()
    for spec in program.tools:
        registry.load(spec, base_dir=args.file.resolve().parent)
    remote_only = bool(args.broker) and not program.tools  # tools known only to the workers: no checks
    compiled = compile_program(program, None if remote_only else registry)
    inputs = bind_inputs(program, parse_assignments(program, args.input))
    run_id = args.run_id or f"{program.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return compiled, inputs, run_id


async def _run(
    args: argparse.Namespace, compiled: Any, inputs: dict[str, Any], run_id: str
) -> tuple[dict, Path]:
    from dag.ir import LLMCall
    from runtime.executor.backends.local_engine import LocalEngineBackend
    from runtime.executor.executor import Executor
    from runtime.tracing import RunRecorder
    from tools.local import LocalToolRunner

    recorder = RunRecorder(
        "run",
        compiled.program.name,
        trace_dir=args.trace_dir,
        run_id=run_id,
        meta={"workflow": str(args.file), "model": args.model, "policy": args.policy},
    )
    trace = recorder.trace()
    status = "failed"
    try:
        needs_llm = any(isinstance(n, LLMCall) for n in compiled.program.nodes.values())
        llm = await _llm_backend(args) if needs_llm else None
        if isinstance(llm, LocalEngineBackend):
            await llm.engine.call(lambda e: e.trace_to(trace))  # the engine's events join the run's trace
        if args.broker:
            from tools.mqtt import MqttToolRunner

            tools: Any = MqttToolRunner(args.broker, registry=compiled.registry)
        else:
            tools = LocalToolRunner(compiled.registry)
        try:
            result = await Executor(tools, llm, trace=trace).run(compiled, inputs, program_id=run_id)
            status = "ok"
        finally:
            await tools.close()
            if llm is not None:
                await llm.close()
    finally:
        recorder.end(status)
    return result.outputs, trace.path


async def _llm_backend(args: argparse.Namespace) -> Any:
    if args.openai_url:
        from runtime.executor.backends.openai import OpenAIBackend

        key = args.openai_api_key or os.environ.get("OPENAI_API_KEY")
        return OpenAIBackend(args.openai_url, args.model, api_key=key)
    from runtime.engine.config import EngineConfig
    from runtime.engine.errors import EngineError, ModelLoadError
    from runtime.executor.backends.local_engine import LocalEngineBackend
    from runtime.executor.errors import ExecutorError

    try:
        config = EngineConfig(model=args.model, **engine_kwargs(args))
        return await LocalEngineBackend.create(config)
    except (EngineError, ModelLoadError, ValueError, KeyError) as exc:
        raise ExecutorError(f"cannot start the engine for --model {args.model!r}: {exc}") from exc


def _jsonable(outputs: dict[str, Any]) -> dict[str, Any]:
    import pydantic_core

    return pydantic_core.to_jsonable_python(outputs, fallback=str)
