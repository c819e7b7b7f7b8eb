"""``Planner``: the LLMCompiler loop (Kim et al., "An LLM Compiler for Parallel Function Calling") on Tether's
executor. See docs/agents.md, "Planner (LLMCompiler)".

    planner call (streamed) ──► each task, the moment its line is complete ──► its tool call, once the
                                                                                tasks it names are done
    all tasks done ──► joiner call ──► Finish(answer) | Replan (a new planner call that sees the plans and
                                                       observations so far; at most ``max_replans``)

A ``run`` is one held program (``planner-…``) that grows round by round: the LLM calls (``plan0``, ``join0``,
``plan1``, ...) and each task as a tool-call node (``p0_t3``, ``tasks.py``) streamed from its plan, so the
executor's graph is plan -> tasks -> join -> next plan. A failing tool is an ``Observation`` with ``error``
(``on_error="value"``): the agent goes on. Each call tells the engine what it knows (``hints.py``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from typing import Any

from tether.agents.fewshot import PlanExample, check_plan_examples
from tether.agents.planner import record
from tether.agents.planner.grammar import plan_grammar
from tether.agents.planner.hints import join_hints, join_outcome, plan_hints, plan_outcome
from tether.agents.planner.joiner import JoinerDecision, parse_joiner
from tether.agents.planner.plan import PlanError, PlanTask
from tether.agents.planner.prompts import (
    JOINER_EXAMPLE_ASSISTANT,
    JOINER_EXAMPLE_USER,
    JOINER_SYSTEM,
    joiner_grammar,
    joiner_user,
    planner_system,
    planner_user,
    render_round,
    render_value,
)
from tether.agents.planner.stream import PlanStreamParser
from tether.agents.planner.tasks import Round, TaskRunner
from tether.agents.result import AgentResult, LLMUsage, Observation
from tether.agents.runtime import AgentRuntime
from tether.dag import LLMCall, Message
from tether.runtime.executor import LLMDelta, ProgramRun
from tether.tools.tool import Tool


def _escape(text: str) -> str:
    """Message contents are templates: ``${`` in plain text (plans, observations) is written ``$${``."""
    return text.replace("${", "$${")


def is_local_engine(backend: Any) -> bool:
    """Whether ``backend`` is the local engine (checked without importing the engine when it is not)."""
    mod = sys.modules.get("tether.runtime.executor.backends.local_engine")
    return mod is not None and isinstance(backend, mod.LocalEngineBackend)


class Planner:
    """``await Planner(tools).run(question)`` -> ``AgentResult``. ``tools``: Tether ``Tool``s. The LLM is the
    local engine on ``model`` (``engine_kwargs``: ``EngineConfig`` fields), or ``backend``, or the given
    ``runtime`` (an ``AgentRuntime``; the tools are registered in it if missing). ``constrained`` (``None``:
    on the local engine only) puts ``plan_grammar`` (strings of at most ``max_string_length`` characters, at
    most ``max_tasks`` tool calls) on the planner call and a grammar on the joiner's.
    ``examples``: few-shot ``PlanExample``s shown in the planner's prompt as LLMCompiler shows them (default:
    none; each must parse calling only ``tools``, else ``FewShotError``; see ``tether.agents.fewshot``)."""

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
        examples: Iterable[PlanExample] = (),
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
        self.examples = check_plan_examples(examples, self.tools)
        self._system = planner_system(self.tools, self.examples)
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
        follows: tuple[list[str], list[str]] = ([], [])  # what the next node depends on / is drawn after
        try:
            for r in range(self.max_replans + 1):
                final = r == self.max_replans
                rnd = await self._plan_round(rt, run, r, question, history, usage, follows)
                plans.append(rnd.tasks)
                observations.extend(rnd.observations)
                error = str(rnd.error) if rnd.error is not None else None
                rendered = render_round(rnd.tasks, rnd.observations, error)
                if rnd.truncated:
                    rendered += "\nNote: the plan was cut off at the token limit; its last line was dropped."
                if error is not None and not final:
                    history.append((rendered, None))
                    replans += 1
                    follows = rnd.exits()
                    continue
                decision = await self._join(run, r, question, rendered, final, usage, rnd.exits())
                follows = ([record.join_node(r)], [])
                if decision.answer is not None:
                    answer = decision.answer
                    break
                if decision.replan and not final:
                    history.append((rendered, decision.thought))
                    replans += 1
                    continue
                answer = self._fallback(decision, observations)
                break
            record.answer(run, [*follows[0], *follows[1]], answer)
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
        follows: tuple[list[str], list[str]],
    ) -> Round:
        """Round ``r``: its planner call (after what ``follows`` names: the previous round) streamed, and its
        tasks run as nodes of ``run``."""
        rnd = Round(r)
        parser = PlanStreamParser(self.tools)
        runner = TaskRunner(run, self._names)
        node_id = record.plan_node(r)
        started = time.perf_counter()

        def on_delta(delta: LLMDelta) -> None:
            if delta.result is not None:
                usage.append(_usage("planner", delta, started))
                rnd.finish_reason = delta.result.finish_reason
            if rnd.error is not None or rnd.joined:
                return
            try:
                runner.take(rnd, parser.feed(delta.text))
            except PlanError as exc:
                rnd.error = exc

        call = self._planner_call(node_id, question, history, follows[0])
        hints = plan_hints(len(usage), final=r == self.max_replans)
        outcome = plan_outcome(self.tools, rt.tool_stats)
        run.add_node(call, hints, on_delta=on_delta, after=follows[1], outcome=outcome)
        try:
            await run.node_future(node_id)
            if rnd.error is None and not rnd.joined:
                try:
                    runner.take(rnd, parser.close())
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

    def _planner_call(
        self, node_id: str, question: str, history: list[tuple[str, str | None]], depends: list[str]
    ) -> LLMCall:
        """The planner's LLM call (after ``depends``): the system prompt, then the question with the rounds so
        far."""
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
            depends=tuple(depends),
        )

    def _grammar(self) -> str:
        if self._plan_grammar is None:
            self._plan_grammar = plan_grammar(
                self.tools, max_tasks=self.max_tasks, max_string_length=self.max_string_length
            )
        return self._plan_grammar

    # -- joiner ---------------------------------------------------------------------------------------------
    async def _join(
        self,
        run: ProgramRun,
        r: int,
        question: str,
        rendered: str,
        final: bool,
        usage: list[LLMUsage],
        exits: tuple[list[str], list[str]],
    ) -> JoinerDecision:
        """Round ``r``'s joiner call, after the round's tasks (``exits``: the ones the run executed, then the
        recorded ones)."""
        node_id = record.join_node(r)
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
            id=node_id,
            messages=messages,
            max_tokens=self.joiner_max_tokens,
            temperature=0.0,
            grammar=grammar,
            depends=tuple(exits[0]),
        )
        hints = join_hints(len(usage), final)
        run.add_node(call, hints, on_delta=on_delta, after=exits[1], outcome=join_outcome(final))
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
