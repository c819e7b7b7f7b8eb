"""``ReActAgent``: the ReAct baseline (Yao et al., *ReAct: Synergizing Reasoning and Acting in Language
Models*, 2023): one tool per turn, thought -> action -> observation, on one growing conversation.

    async with ReActAgent(AGENT_TOOLS, model="smollm2") as agent:
        result = await agent.run("What is the total population of Paris and Oslo?")
        result.answer, result.observations, result.llm_calls

Each turn is one LLM call on the conversation so far (system prompt with the tools and the format, the
question, then per turn the model's ``Thought: ...\\nAction: ...`` and a user message ``Observation: ...``),
so the engine reuses the prefix's KV cache. The action runs as a ``ToolCall`` node on the same held
program run as the LLM calls (the DAG grows llm1, tool1, llm2, tool2, ...). On the local engine each turn
is constrained by ``react_grammar``; the last allowed turn (``max_steps``) may only ``Finish``. A tool that
fails (bad arguments, an unknown tool, an error it raises) is an ``Observation`` with ``error``, shown to
the model: tool nodes are ``ToolCall(on_error="value")``, so the program goes on. Token counts and times come
from each turn's result (``run.llm_result(node_id).usage``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from tether.agents.fewshot import ReActExample, check_react_examples, render_examples
from tether.agents.react_grammar import (
    FINISH,
    ReActFormatError,
    ToolSpec,
    Turn,
    parse_turn,
    react_grammar,
    signature,
    tool_specs,
)
from tether.agents.result import AgentResult, LLMUsage, Observation
from tether.agents.runtime import AgentRuntime
from tether.dag import LLMCall, LLMHints, Message, ToolCall, ToolFailure
from tether.dag.errors import DagError
from tether.hints import TurnOutcome
from tether.runtime.executor import LLMBackend, ProgramRun
from tether.tools.tool import Tool

MAX_OBSERVATION_CHARS = 1500
TURN_MAX_TOKENS = 256

SYSTEM_PROMPT = """You answer the user's question by reasoning step by step and using tools, one tool per turn.

Tools:
{tools}
- {finish}(answer): give the final answer and stop.

Each reply has exactly two lines: "Thought:" with your reasoning, then "Action:" with one tool call
(keyword arguments) or {finish}. After each action you get "Observation:" with the tool's result.
Look up every fact you need with the tools; never guess. Finish only when the observations answer the question.

{shots}"""

# the tail of SYSTEM_PROMPT without few-shot examples
FORMAT_EXAMPLE = """Example of the format:
Thought: I need the first fact.
Action: {example}
Observation: ...
Thought: The observations answer the question.
Action: {finish}("the final answer, with its number or name")"""

LAST_STEP_NOTE = "\n(This is your last step: answer now with Action: Finish(answer).)"


def observation_text(value: Any, limit: int = MAX_OBSERVATION_CHARS) -> str:
    """A tool's value as the model sees it: strings as they are, anything else as JSON (models dumped;
    whole floats without ``.0``), cut to ``limit`` characters."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif isinstance(value, str):
        text = value
    else:
        if isinstance(value, list):
            value = [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
        elif hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= limit else text[:limit] + " ...(cut)"


def _literal(text: str) -> str:
    """Message contents are templates: ``${`` is written ``$${``."""
    return text.replace("${", "$${")


def _example(spec: ToolSpec) -> str:
    placeholders = {"string": '"..."', "integer": "1", "number": "1.5", "boolean": "True"}
    required = spec.schema.get("required", spec.params)
    props = spec.schema.get("properties", {})
    args = [f"{k}={placeholders.get(props[k].get('type'), '...')}" for k in props if k in required]
    return f"{spec.name}({', '.join(args)})"


def system_prompt(specs: list[ToolSpec], examples: Sequence[ReActExample] = ()) -> str:
    """The system message: each tool's signature, description and argument notes, the turn format, then the
    few-shot ``examples`` (``fewshot.render_examples``: ``Here are some examples:``, each trace, a blank line
    between two) or, without examples, one placeholder example of the format."""
    lines = []
    for spec in specs:
        lines.append(f"- {signature(spec)}: {spec.description}")
        for key, sub in spec.schema.get("properties", {}).items():
            if isinstance(sub, dict) and sub.get("description"):
                lines.append(f"    {key}: {sub['description']}")
    example = _example(specs[0]) if specs else f'{FINISH}("...")'
    shots = render_examples(examples) or FORMAT_EXAMPLE.format(finish=FINISH, example=example)
    return SYSTEM_PROMPT.format(tools="\n".join(lines), finish=FINISH, shots=shots)


class ReActAgent:
    """A ReAct agent over ``tools`` (``tools.Tool``s). ``runtime``: an ``AgentRuntime`` to share (its
        registry must hold the tools; it is not closed by ``close``); else one is made on first use from
        ``backend`` or the local engine on ``model`` (``EngineConfig`` keyword arguments in
        ``engine_kwargs``) and ``trace``. ``constrained``: decode with ``react_grammar`` (default: on the local
        engine only); ``min_tool_calls``: constrained turns may ``Finish`` only after this many tool calls (the
    last turn always may). ``max_steps``: LLM calls per question at most (so at most ``max_steps - 1`` tool calls).
    ``examples``: few-shot ``ReActExample`` traces for the system prompt (default: none, one placeholder example
    of the format instead; each must parse for ``tools``, else ``FewShotError``; see ``tether.agents.fewshot``)."""

    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        model: str | None = "smollm2",
        backend: LLMBackend | None = None,
        runtime: AgentRuntime | None = None,
        max_steps: int = 8,
        constrained: bool | None = None,
        min_tool_calls: int = 1,
        examples: Iterable[ReActExample] = (),
        trace: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.tools = list(tools)
        self.specs = tool_specs(self.tools)
        if runtime is not None:
            missing = [s.name for s in self.specs if s.name not in runtime.registry]
            if missing:
                raise ValueError(f"the runtime's registry lacks the tools {missing}")
        self.max_steps = max_steps
        self.constrained = constrained
        self.min_tool_calls = min_tool_calls
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._create = dict(model=model, backend=backend, trace=trace, **engine_kwargs)
        self.examples = check_react_examples(examples, self.tools)
        self.system = system_prompt(self.specs, self.examples)
        self._grammar = react_grammar(self.tools)
        self._finish_grammar = react_grammar((), finish_only=True)
        self._act_grammar = react_grammar(self.tools, allow_finish=False) if self.specs else self._grammar

    @property
    def runtime(self) -> AgentRuntime | None:
        return self._runtime

    async def _ensure(self) -> AgentRuntime:
        if self._runtime is None:
            self._runtime = await AgentRuntime.create(self.tools, **self._create)
        return self._runtime

    def _is_constrained(self, rt: AgentRuntime) -> bool:
        if self.constrained is not None:
            return self.constrained
        return getattr(rt.backend, "name", None) == "local"

    async def run(self, question: str) -> AgentResult:
        """Answer ``question``: turns until ``Finish`` or ``max_steps``. Raises ``NodeFailedError`` when an
        LLM call fails (tool failures are observations)."""
        rt = await self._ensure()
        constrained = self._is_constrained(rt)
        start = time.perf_counter()
        trace_id = f"react-{uuid.uuid4().hex[:8]}"
        messages = [Message(role="system", content=_literal(self.system)),
                    Message(role="user", content=_literal(question))]  # fmt: skip
        observations: list[Observation] = []
        usage: list[LLMUsage] = []
        run = rt.start_program("react", program_id=trace_id)
        answer: str | None = None
        last_thought, last_observation = "", ""
        try:
            for turn in range(1, self.max_steps + 1):
                last = turn == self.max_steps
                grammar = self._turn_grammar(last, len(observations)) if constrained else None
                text, turn_usage = await self._think(rt, run, turn, messages, grammar)
                usage.append(turn_usage)
                reply, parsed, error = _read_turn(str(text), self.specs)
                messages.append(Message(role="assistant", content=_literal(reply)))
                if parsed is not None:
                    last_thought = parsed.thought or last_thought
                if parsed is not None and parsed.is_finish:
                    answer = parsed.answer
                    break
                if last:
                    break
                if parsed is None:
                    shown = f"Error: {error}"
                else:
                    obs = await self._act(run, turn, parsed)
                    observations.append(obs)
                    shown = f"Error: {obs.error}" if obs.error is not None else observation_text(obs.value)
                    if obs.error is None:
                        last_observation = shown
                note = LAST_STEP_NOTE if turn + 1 == self.max_steps else ""
                messages.append(Message(role="user", content=_literal(f"Observation: {shown}{note}")))
        finally:
            run.seal()
            await run.wait()
        if answer is None:  # out of steps without Finish: answer with what it has
            answer = " ".join(t for t in (last_thought, last_observation) if t)
        return AgentResult(
            answer=answer,
            plans=[],
            observations=observations,
            llm_calls=usage,
            trace_id=trace_id,
            replans=0,
            seconds=time.perf_counter() - start,
        )

    def _turn_grammar(self, last: bool, tool_calls: int) -> str:
        """A constrained turn's grammar: the last turn may only ``Finish``, and a turn before
        ``min_tool_calls`` tool calls may not."""
        if last:
            return self._finish_grammar
        return self._act_grammar if tool_calls < self.min_tool_calls else self._grammar

    async def _think(
        self, rt: AgentRuntime, run: ProgramRun, turn: int, messages: list[Message], grammar: str | None
    ) -> tuple[Any, LLMUsage]:
        """The turn's LLM call on the conversation so far, as node ``llm<turn>`` after the previous turn's tool
        node (or its LLM call, when it ran no tool): its text and its usage. When the turn ends, the engine
        learns its action from the reply (``turn_outcome``)."""
        last = turn == self.max_steps
        node_id = f"llm{turn}"
        previous = next((n for n in (f"tool{turn - 1}", f"llm{turn - 1}") if n in run.program.nodes), None)
        call = LLMCall(
            id=node_id,
            messages=tuple(messages),
            max_tokens=TURN_MAX_TOKENS,
            grammar=grammar,
            depends=(previous,) if previous is not None else (),
        )
        hints = LLMHints(turn=turn - 1, remaining_turns=0 if last else None, last_turn=last)
        run.add_node(call, hints, outcome=self.turn_outcome)
        text = await run.node_future(node_id)
        t = run.llm_result(node_id).usage
        return text, LLMUsage("react", t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.seconds)

    def turn_outcome(self, text: str) -> TurnOutcome | None:
        """What a finished turn says (read on the engine's thread): the tool its action calls, or the run's
        end (``Finish``); ``None`` for a reply that does not parse (the turn's hints then)."""
        parsed = _read_turn(text, self.specs)[1]
        if parsed is None:
            return None
        if parsed.is_finish:
            return TurnOutcome(None, last_turn=True)
        return TurnOutcome(parsed.tool, last_turn=False)

    async def _act(self, run: ProgramRun, turn: int, parsed: Turn) -> Observation:
        """Run the turn's tool as node ``tool<turn>``, after the turn's LLM call (``on_error="value"``: a failing
        call is the observation's ``error``, and the program goes on)."""
        assert parsed.tool is not None
        tool_id = f"tool{turn}"
        t0 = time.perf_counter()
        try:
            node = ToolCall(
                id=tool_id, tool=parsed.tool, args=parsed.args, on_error="value", depends=(f"llm{turn}",)
            )
            run.add_node(node)
        except DagError as exc:  # arguments that fail the tool's schema: no node was added
            return Observation(turn, parsed.tool, parsed.args, error=str(exc))
        value = await run.node_future(tool_id)
        seconds = time.perf_counter() - t0
        if isinstance(value, ToolFailure):
            error = f"{value.error_type}: {value.message}"
            return Observation(turn, parsed.tool, parsed.args, error=error, seconds=seconds)
        return Observation(turn, parsed.tool, parsed.args, value=value, seconds=seconds)

    async def close(self) -> None:
        if self._owns_runtime and self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    async def __aenter__(self) -> ReActAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _read_turn(text: str, specs: list[ToolSpec]) -> tuple[str, Turn | None, str | None]:
    """The reply as kept in the conversation (up to the end of its first ``Action:`` line: anything a model
    writes after it, such as an invented observation, is dropped), the parsed turn, or the format error."""
    reply = text.strip()
    lines = reply.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("Action"):
            reply = "\n".join(lines[: i + 1])
            break
    try:
        return reply, parse_turn(reply, specs), None
    except ReActFormatError as exc:
        return reply, None, str(exc)
