"""``Planner``: the LLMCompiler loop (Kim et al., "An LLM Compiler for Parallel Function Calling") on Tether's
executor. See docs/agents.md, "Planner (LLMCompiler)".

    planner call (streamed) ──► each task, the moment its line is complete ──► its tool call, once the
                                                                                tasks it names are done
    all tasks done ──► joiner call ──► Finish(answer) | Replan (a new planner call that sees the plans and
                                                       observations so far; at most ``max_replans``)

One held program per ``run`` (``planner-…``) holds the LLM calls (``plan0``, ``join0``, ``plan1``, ...).
Each task runs as its own one-node program (``planner-….p0.t3``), so a failing tool fails only that
program and becomes an ``Observation`` with ``error``: the agent goes on. The task's arguments (its
references substituted by ``resolve_args``, typed) are bound as the program's input defaults and the tool
call reads them with ``${inputs.NAME}``, so no argument text is ever read as a template.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.agents.planner import record
from tether.agents.planner.grammar import plan_grammar
from tether.agents.planner.joiner import JoinerDecision, parse_joiner
from tether.agents.planner.plan import PlanError, PlanTask, resolve_args
from tether.agents.planner.prompts import (
    JOINER_EXAMPLE_ASSISTANT,
    JOINER_EXAMPLE_USER,
    JOINER_SYSTEM,
    examples_for,
    joiner_grammar,
    joiner_user,
    planner_system,
    planner_user,
    render_round,
    render_value,
)
from tether.agents.planner.stream import PlanStreamParser
from tether.agents.result import AgentResult, LLMUsage, Observation
from tether.agents.runtime import AgentRuntime
from tether.dag import InputSpec, LLMCall, Message, Program, ToolCall, compile_program
from tether.dag.errors import DagError
from tether.runtime.executor import LLMDelta, NodeFailedError, ProgramRun
from tether.tools.tool import Tool

_INPUT_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
    (tuple, "array"),
)


def _escape(text: str) -> str:
    """Message contents are templates: ``${`` in plain text (plans, observations) is written ``$${``."""
    return text.replace("${", "$${")


def is_local_engine(backend: Any) -> bool:
    """Whether ``backend`` is the local engine (checked without importing the engine when it is not)."""
    mod = sys.modules.get("tether.runtime.executor.backends.local_engine")
    return mod is not None and isinstance(backend, mod.LocalEngineBackend)


@dataclass
class _Round:
    """One plan being streamed and run: the tasks dispatched, a future per task (its ``Observation``)."""

    number: int
    tasks: list[PlanTask] = field(default_factory=list)
    futures: dict[int, asyncio.Future[Observation]] = field(default_factory=dict)
    jobs: list[asyncio.Task[None]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    error: PlanError | None = None
    joined: bool = False
    finish_reason: str | None = None
    truncated: bool = False  # the last line was cut off at the token limit (dropped)


class Planner:
    """``await Planner(tools).run(question)`` -> ``AgentResult``. ``tools``: Tether ``Tool``s. The LLM is the
    local engine on ``model`` (``engine_kwargs``: ``EngineConfig`` fields), or ``backend``, or the given
    ``runtime`` (an ``AgentRuntime``; the tools are registered in it if missing). ``constrained`` (``None``:
    on the local engine only) puts ``plan_grammar`` (strings of at most ``max_string_length`` characters, at
    most ``max_tasks`` tool calls) on the planner call and a grammar on the joiner's.
    ``examples``: few-shot ``(question, plan)`` pairs (default: the built-in ones whose tools are offered)."""

    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        model: str | None = "smollm2",
        backend: Any = None,
        runtime: AgentRuntime | None = None,
        max_replans: int = 2,
        max_tasks: int = 8,
        max_string_length: int = 80,
        constrained: bool | None = None,
        planner_max_tokens: int = 320,
        joiner_max_tokens: int = 96,
        examples: Iterable[tuple[str, str]] | None = None,
        trace: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        if max_replans < 0 or max_tasks < 1:
            raise ValueError("max_replans must be >= 0 and max_tasks >= 1")
        self.tools = list(tools)
        self.max_replans, self.max_tasks, self.max_string_length = max_replans, max_tasks, max_string_length
        self.planner_max_tokens, self.joiner_max_tokens = planner_max_tokens, joiner_max_tokens
        self._model, self._backend, self._trace, self._engine_kwargs = model, backend, trace, engine_kwargs
        self._constrained_arg = constrained
        self.runtime = runtime
        self._owns_runtime = runtime is None
        self._examples = list(examples) if examples is not None else examples_for(self.tools)
        self._system = planner_system(self.tools, self._examples)
        self._plan_grammar: str | None = None
        self._names = {t.name: list(t.input_schema().get("properties", {})) for t in self.tools}

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def _ensure(self) -> AgentRuntime:
        if self.runtime is None:
            self.runtime = await AgentRuntime.create(
                self.tools, model=self._model, backend=self._backend, trace=self._trace, **self._engine_kwargs
            )
        rt = self.runtime
        for t in self.tools:
            if t.name not in rt.registry:
                rt.registry.register(t)
        return rt

    @property
    def constrained(self) -> bool:
        """Whether plans (and the joiner's replies) are grammar-constrained."""
        if self._constrained_arg is not None:
            return self._constrained_arg
        return self.runtime is not None and is_local_engine(self.runtime.backend)

    async def close(self) -> None:
        if self._owns_runtime and self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def __aenter__(self) -> Planner:
        await self._ensure()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the loop -------------------------------------------------------------------------------------------
    async def run(self, question: str) -> AgentResult:
        rt = await self._ensure()
        start = time.perf_counter()
        run = rt.start_program("planner")
        plans: list[list[PlanTask]] = []
        observations: list[Observation] = []
        usage: list[LLMUsage] = []
        history: list[tuple[str, str | None]] = []
        answer, replans = "", 0
        after: list[str] = []  # what the next node follows in the run's DAG (record.py)
        try:
            for r in range(self.max_replans + 1):
                final = r == self.max_replans
                rnd = await self._plan_round(rt, run, r, question, history, usage, after)
                plans.append(rnd.tasks)
                observations.extend(rnd.observations)
                error = str(rnd.error) if rnd.error is not None else None
                rendered = render_round(rnd.tasks, rnd.observations, error)
                if rnd.truncated:
                    rendered += "\nNote: the plan was cut off at the token limit; its last line was dropped."
                if error is not None and not final:
                    history.append((rendered, None))
                    replans += 1
                    after = record.round_exits(r, rnd.tasks)
                    continue
                exits = record.round_exits(r, rnd.tasks)
                decision = await self._join(run, r, question, rendered, final, usage, exits)
                after = [record.join_node(r)]
                if decision.answer is not None:
                    answer = decision.answer
                    break
                if decision.replan and not final:
                    history.append((rendered, decision.thought))
                    replans += 1
                    continue
                answer = self._fallback(decision, observations)
                break
            record.answer(run, after, answer)
        except BaseException:
            run.cancel("the planner failed")
            raise
        run.seal()
        await run.wait()
        return AgentResult(
            answer=answer,
            plans=plans,
            observations=observations,
            llm_calls=usage,
            trace_id=run.id,
            replans=replans,
            seconds=time.perf_counter() - start,
        )

    @staticmethod
    def _fallback(decision: JoinerDecision, observations: list[Observation]) -> str:
        """An answer when the joiner gave no ``Finish`` (an unconstrained model): its thought, else the last
        observation that worked."""
        if decision.thought:
            return decision.thought
        for obs in reversed(observations):
            if obs.error is None:
                return render_value(obs.value)
        return decision.text.strip()

    # -- planner call and streaming dispatch ------------------------------------------------------------------
    async def _plan_round(
        self,
        rt: AgentRuntime,
        run: ProgramRun,
        r: int,
        question: str,
        history: list[tuple[str, str | None]],
        usage: list[LLMUsage],
        after: list[str],
    ) -> _Round:
        """Round ``r``: its planner call (drawn ``after`` the previous round) streamed and its tasks run."""
        rnd = _Round(r)
        parser = PlanStreamParser(self.tools)
        node_id = f"plan{r}"
        started = time.perf_counter()

        def on_delta(delta: LLMDelta) -> None:
            if delta.result is not None:
                usage.append(_usage("planner", delta, started))
                rnd.finish_reason = delta.result.finish_reason
            if rnd.error is not None or rnd.joined:
                return
            try:
                self._take(rt, run, rnd, parser.feed(delta.text))
            except PlanError as exc:
                rnd.error = exc

        run.add_node(self._planner_call(node_id, question, history), on_delta=on_delta, after=after)
        try:
            await run.node_future(node_id)
            if rnd.error is None and not rnd.joined:
                try:
                    self._take(rt, run, rnd, parser.close())
                except PlanError as exc:
                    if rnd.finish_reason == "length":
                        rnd.truncated = True  # a plan cut off mid-line: run what came before it
                    else:
                        rnd.error = exc
            if rnd.error is None and not any(t.is_join for t in rnd.tasks) and not rnd.jobs:
                rnd.error = PlanError("the plan has no task", kind="malformed")
            await asyncio.gather(*rnd.jobs)
        except BaseException:
            for job in rnd.jobs:
                job.cancel()
            raise
        return rnd

    def _planner_call(self, node_id: str, question: str, history: list[tuple[str, str | None]]) -> LLMCall:
        """The planner's LLM call: the system prompt, then the question with the rounds so far."""
        messages = (
            Message(role="system", content=_escape(self._system)),
            Message(role="user", content=_escape(planner_user(question, history))),
        )
        grammar = self._grammar() if self.constrained else None
        return LLMCall(
            id=node_id,
            messages=messages,
            max_tokens=self.planner_max_tokens,
            temperature=0.0,
            grammar=grammar,
        )

    def _take(self, rt: AgentRuntime, run: ProgramRun, rnd: _Round, tasks: list[PlanTask]) -> None:
        """Add newly parsed ``tasks`` to the round and dispatch each; a join task ends the plan (what follows it
        is dropped)."""
        for task in tasks:
            if rnd.joined:
                return
            rnd.tasks.append(task)
            if task.is_join:
                rnd.joined = True
            else:
                record.task_added(run, rnd.number, task)
                self._dispatch(rt, run, rnd, task)

    def _grammar(self) -> str:
        if self._plan_grammar is None:
            self._plan_grammar = plan_grammar(
                self.tools, max_tasks=self.max_tasks, max_string_length=self.max_string_length
            )
        return self._plan_grammar

    def _dispatch(self, rt: AgentRuntime, run: ProgramRun, rnd: _Round, task: PlanTask) -> None:
        rnd.futures[task.idx] = asyncio.get_running_loop().create_future()
        rnd.jobs.append(asyncio.create_task(self._run_task(rt, run, rnd, task)))

    async def _run_task(self, rt: AgentRuntime, run: ProgramRun, rnd: _Round, task: PlanTask) -> None:
        """Run the task once the tasks it needs have observations; its node's outcome goes to the trace."""
        began: list[float] = []  # when its tool call started (record.task_started), if it did
        try:
            obs = await self._task_observation(rt, run, rnd, task, began)
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):  # the trace may be closed already: the cancel goes on
                record.task_cancelled(run, rnd.number, task, began[0] if began else None)
            raise
        record.task_ended(run, rnd.number, obs, began[0] if began else None)
        rnd.observations.append(obs)
        rnd.futures[task.idx].set_result(obs)

    async def _task_observation(
        self, rt: AgentRuntime, run: ProgramRun, rnd: _Round, task: PlanTask, began: list[float]
    ) -> Observation:
        deps = [await rnd.futures[d] for d in sorted(task.deps)]
        failed = [d.task for d in deps if d.error is not None]
        start = time.perf_counter()
        kwargs: dict[str, Any] = {}
        if failed:
            obs = Observation(
                task.idx,
                task.tool,
                {},
                error="not run: it needs " + ", ".join(f"${i}" for i in failed) + ", which failed",
            )
        else:
            try:
                args, named = resolve_args(task, {d.task: d.value for d in deps})
                kwargs = self._keywords(task, args, named)
            except PlanError as exc:
                obs = Observation(task.idx, task.tool, dict(task.kwargs), error=str(exc))
            else:
                program_id = f"{run.id}.p{rnd.number}.t{task.idx}"
                began.append(record.task_started(run, rnd.number, task, program_id))
                value, error = await self._call_tool(rt, program_id, task, kwargs)
                obs = Observation(task.idx, task.tool, kwargs, value, error, time.perf_counter() - start)
        return obs

    def _keywords(self, task: PlanTask, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Positional arguments named by the tool's schema order."""
        names = self._names.get(task.tool, [])
        if len(args) > len(names):
            raise PlanError(
                f"{task.tool} takes at most {len(names)} arguments", kind="malformed", task=task.idx
            )
        out = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in out:
                raise PlanError(f"{task.tool}: {key!r} given twice", kind="malformed", task=task.idx)
            out[key] = value
        return out

    async def _call_tool(
        self, rt: AgentRuntime, program_id: str, task: PlanTask, kwargs: dict[str, Any]
    ) -> tuple[Any, str | None]:
        """Run the tool as a one-node program: ``(value, None)`` or ``(None, error text)``."""
        node_id = f"t{task.idx}"
        inputs = {k: InputSpec(type=_input_type(v), default=v) for k, v in kwargs.items()}
        node = ToolCall(id=node_id, tool=task.tool, args={k: f"${{inputs.{k}}}" for k in kwargs})
        try:
            program = Program("planner-task", inputs=inputs, nodes=[node])
            compiled = compile_program(program, rt.registry, stats=rt.tool_stats)
        except DagError as exc:
            return None, str(exc)
        try:
            result = await rt.executor.start(compiled, program_id=program_id).wait()
        except NodeFailedError as exc:
            return None, f"{type(exc.cause).__name__}: {exc.cause}"
        return result.node_outputs[node_id], None

    # -- joiner ---------------------------------------------------------------------------------------------
    async def _join(
        self,
        run: ProgramRun,
        r: int,
        question: str,
        rendered: str,
        final: bool,
        usage: list[LLMUsage],
        after: list[str],
    ) -> JoinerDecision:
        node_id = f"join{r}"
        started = time.perf_counter()

        def on_delta(delta: LLMDelta) -> None:
            if delta.result is not None:
                usage.append(_usage("joiner", delta, started))

        messages = (
            Message(role="system", content=JOINER_SYSTEM),
            Message(role="user", content=_escape(JOINER_EXAMPLE_USER)),
            Message(role="assistant", content=JOINER_EXAMPLE_ASSISTANT),
            Message(role="user", content=_escape(joiner_user(question, rendered, final))),
        )
        grammar = joiner_grammar(allow_replan=not final) if self.constrained else None
        call = LLMCall(
            id=node_id, messages=messages, max_tokens=self.joiner_max_tokens, temperature=0.0, grammar=grammar
        )
        run.add_node(call, on_delta=on_delta, after=after)
        text = await run.node_future(node_id)
        return parse_joiner(text if isinstance(text, str) else str(text))


def _usage(role: str, delta: LLMDelta, started: float) -> LLMUsage:
    result = delta.result
    assert result is not None
    return LLMUsage(
        role=role,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cached_tokens=result.cached_tokens,
        seconds=time.perf_counter() - started,
    )


def _input_type(value: Any) -> Any:
    for kind, name in _INPUT_TYPES:
        if isinstance(value, kind):
            return name
    return "object"
