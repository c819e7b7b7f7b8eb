"""``run_workflow``: a workflow YAML run end to end from Python, as ``tether run`` runs it (the command is a thin
wrapper around this)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.dag.compiler import CompiledProgram
from tether.runtime.executor.run import ProgramResult
from tether.tools.durations import ToolDurationStats


@dataclass(frozen=True)
class WorkflowRun:
    """A finished workflow run: its id, the executor's result (``outputs``, every node's value) and the
    recorded run's event file (docs/tracing.md)."""

    run_id: str
    result: ProgramResult
    trace: Path

    @property
    def outputs(self) -> dict[str, Any]:
        return self.result.outputs


def prepare_workflow(
    path: str | Path,
    inputs: Mapping[str, Any] | None = None,
    *,
    assignments: Sequence[str] = (),
    remote_tools: bool = False,
    stats: ToolDurationStats | None = None,
) -> tuple[CompiledProgram, dict[str, Any]]:
    """Load, compile and bind inputs: everything that can fail before anything runs (``DagError`` naming the
    file, line and node; ``ToolError``). ``assignments``: more inputs as ``"key=value"`` text (``--input``),
    typed by the program's declared inputs. ``remote_tools``: the tools are known only to MQTT workers, so a
    workflow without ``tools:`` files is not checked against a registry. ``stats`` predicts tool durations
    (default: the deployment's, ``tether.tools.store.deployment_stats()``)."""
    from tether.dag.compiler import compile_program
    from tether.dag.inputs import bind_inputs, parse_assignments
    from tether.dag.yaml_loader import load_workflow
    from tether.tools.registry import ToolRegistry
    from tether.tools.store import deployment_stats

    path = Path(path)
    program = load_workflow(path)
    registry = ToolRegistry()
    for spec in program.tools:
        registry.load(spec, base_dir=path.resolve().parent)
    registry_or_none = None if remote_tools and not program.tools else registry
    compiled = compile_program(program, registry_or_none, stats=stats or deployment_stats())
    given = {**dict(inputs or {}), **parse_assignments(program, list(assignments))}
    return compiled, bind_inputs(program, given)


async def run_workflow(
    workflow: str | Path | CompiledProgram,
    inputs: Mapping[str, Any] | None = None,
    *,
    model: str = "smollm2",
    openai_url: str | None = None,
    openai_api_key: str | None = None,
    broker: str | None = None,
    trace_dir: str | Path | None = None,
    run_id: str | None = None,
    **engine_kwargs: Any,
) -> WorkflowRun:
    """Run a workflow (a YAML path, or a program compiled with ``prepare_workflow``) to completion.

    LLM calls run on the local engine on ``model`` (``EngineConfig`` keyword arguments in ``engine_kwargs``,
    loaded only when the workflow has LLM calls) or on the OpenAI-compatible server at ``openai_url``; tools in
    process, or on ``tether worker`` processes through the MQTT ``broker``. The run is recorded under
    ``trace_dir`` (docs/tracing.md). The compiler, the local tool runner and the engine share the deployment's
    tool-duration statistics (``tether.tools.store``), saved back when the run ends. Raises
    ``NodeFailedError`` naming the node that failed."""
    from tether.dag.ir import LLMCall
    from tether.runtime.executor.backends.local_engine import LocalEngineBackend
    from tether.runtime.executor.executor import Executor
    from tether.runtime.tracing import RunRecorder
    from tether.tools.local import LocalToolRunner
    from tether.tools.store import deployment_stats, save_deployment_stats

    stats = deployment_stats()
    if isinstance(workflow, CompiledProgram):
        compiled, bound = workflow, dict(inputs or {})
    else:
        compiled, bound = prepare_workflow(workflow, inputs, remote_tools=broker is not None, stats=stats)
    name = compiled.program.name
    run_id = run_id or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    meta = {"model": model, "policy": engine_kwargs.get("policy")}
    recorder = RunRecorder("run", name, trace_dir=trace_dir, run_id=run_id, meta=meta)
    trace = recorder.trace()
    status = "failed"
    try:
        needs_llm = any(isinstance(n, LLMCall) for n in compiled.program.nodes.values())
        llm = (
            await _llm_backend(model, openai_url, openai_api_key, engine_kwargs, stats, broker is not None)
            if needs_llm
            else None
        )
        if isinstance(llm, LocalEngineBackend):
            await llm.engine.call(lambda e: e.trace_to(trace))  # the engine's events join the run's trace
        if broker:
            from tether.tools.mqtt import MqttToolRunner

            tools: Any = MqttToolRunner(broker, registry=compiled.registry)
        else:
            tools = LocalToolRunner(compiled.registry, stats)
        try:
            result = await Executor(tools, llm, trace=trace).run(compiled, bound, program_id=run_id)
            status = "ok"
        finally:
            await tools.close()
            if llm is not None:
                await llm.close()
    finally:
        save_deployment_stats()
        recorder.end(status)
    return WorkflowRun(run_id, result, trace.path)


async def _llm_backend(
    model: str,
    openai_url: str | None,
    api_key: str | None,
    engine_kwargs: dict[str, Any],
    stats: ToolDurationStats,
    remote_tools: bool,
) -> Any:
    if openai_url:
        from tether.runtime.executor.backends.openai import OpenAIBackend

        return OpenAIBackend(openai_url, model, api_key=api_key or os.environ.get("OPENAI_API_KEY"))
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.errors import EngineError, ModelLoadError
    from tether.runtime.executor.backends.local_engine import LocalEngineBackend
    from tether.runtime.executor.errors import ExecutorError

    try:
        config = EngineConfig(model=model, **engine_kwargs)
        return await LocalEngineBackend.create(config, tool_stats=stats, observe_tools=remote_tools)
    except (EngineError, ModelLoadError, ValueError, KeyError) as exc:
        raise ExecutorError(f"cannot start the engine for --model {model!r}: {exc}") from exc
