"""``run_workflow``: a workflow YAML run end to end from Python, as ``tether run`` runs it (the command is a thin
wrapper around this)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tether.dag.compiler import CompiledProgram
from tether.dag.ir import LLMCall
from tether.runtime.deployment import Deployment
from tether.runtime.executor.errors import ExecutorError
from tether.runtime.executor.executor import Executor
from tether.runtime.executor.llm import LLMBackend
from tether.runtime.executor.progress import NodeProgress
from tether.runtime.executor.run import ProgramResult
from tether.tools.durations import ToolDurationStats
from tether.tools.local import LocalToolRunner
from tether.tools.runner import ToolRunner


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
    router: str = "program",
    broker: str | None = None,
    trace_dir: str | Path | None = None,
    run_id: str | None = None,
    progress: TextIO | None = None,
    **engine_kwargs: Any,
) -> WorkflowRun:
    """Run a workflow (a YAML path, or a program compiled with ``prepare_workflow``) to completion.

    LLM calls run on the local engine on ``model`` (``EngineConfig`` keyword arguments in ``engine_kwargs``,
    loaded only when the workflow has LLM calls) or on the OpenAI-compatible server at ``openai_url`` (several,
    comma-separated: each call goes where ``router`` says, docs/cluster.md); tools in
    process, or on ``tether worker`` processes through the MQTT ``broker``. The run is recorded under
    ``trace_dir`` (docs/tracing.md). The run's ``Deployment`` (``tether.runtime.deployment``) gives the
    compiler, the local tool runner and the engine the deployment's tool-duration statistics, saved back when
    the run ends. ``progress``: where a bar of the nodes done (``NodeProgress``) is drawn; ``None``: no bar.
    Raises ``NodeFailedError`` naming the node that failed."""
    deployment = Deployment()
    if isinstance(workflow, CompiledProgram):
        compiled, bound = workflow, dict(inputs or {})
    else:
        remote = broker is not None
        compiled, bound = prepare_workflow(workflow, inputs, remote_tools=remote, stats=deployment.stats)
    name = compiled.program.name
    run_id = run_id or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    meta = {"model": model, "policy": engine_kwargs.get("policy")}
    recorder = await deployment.record("run", name, trace_dir=trace_dir, run_id=run_id, meta=meta)
    async with deployment:  # closed whatever happens: the backend, the stats saved, the run ended
        server = (openai_url, openai_api_key, router)
        llm = await _llm_backend(deployment, compiled, model, server, engine_kwargs)
        tools = _tool_runner(compiled, broker, deployment.stats)
        bar = (
            None if progress is None else NodeProgress(deployment.trace, len(compiled.order), progress, name)
        )
        executor = Executor(tools, llm, trace=deployment.trace if bar is None else bar)
        try:
            result = await executor.run(compiled, bound, program_id=run_id)
        finally:
            if bar is not None:
                bar.close()
            await tools.close()
    return WorkflowRun(run_id, result, recorder.trace().path)


async def _llm_backend(
    deployment: Deployment,
    compiled: CompiledProgram,
    model: str,
    server: tuple[str | None, str | None, str],
    engine_kwargs: dict[str, Any],
) -> LLMBackend | None:
    """The run's backend, made by its deployment: none without LLM calls, the server(s) at ``server``'s URL
    (with its API key and router), else the local engine on ``model`` (``ExecutorError`` when it cannot
    start)."""
    if not any(isinstance(n, LLMCall) for n in compiled.program.nodes.values()):
        return None
    openai_url, api_key, router = server
    if openai_url:
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        try:
            return deployment.connect_openai(openai_url, model, api_key=api_key, router=router)
        except ValueError as exc:  # an unknown router
            raise ExecutorError(str(exc)) from None
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.errors import EngineError, ModelLoadError

    try:
        config = EngineConfig(model=model, **engine_kwargs)
        return await deployment.start_local_engine(config)
    except (EngineError, ModelLoadError, ValueError, KeyError) as exc:
        raise ExecutorError(f"cannot start the engine for --model {model!r}: {exc}") from exc


def _tool_runner(compiled: CompiledProgram, broker: str | None, stats: ToolDurationStats) -> ToolRunner:
    """Tools on ``tether worker`` processes through the MQTT ``broker``, else in process on ``stats``."""
    if broker:
        from tether.tools.mqtt import MqttToolRunner

        return MqttToolRunner(broker, registry=compiled.registry, tool_stats=stats)
    return LocalToolRunner(compiled.registry, stats)
