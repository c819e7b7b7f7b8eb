"""Few-shot examples for the planner's and ReAct's prompts, placed the way LLMCompiler places them (Kim et al.,
"An LLM Compiler for Parallel Function Calling"; SqueezeAILab/LLMCompiler ``src/llm_compiler/planner.py``
``generate_llm_compiler_prompt`` and ``configs/*/gpt_prompts.py``): after the tool descriptions and the rules,
under ``Here are some examples:``, before the question.

    planner (PlanExample):             ReAct (ReActExample, the ReAct paper's traces):
    Question: <question>               Question: <question>
    Thought: <strategy>                Thought: <reasoning>
    1. tool(key=value)                 Action: tool(key=value)
    2. tool(key=$1)                    Observation: <what the tool returned>
    3. join()                          ...
    <END_OF_PLAN>                      Thought: <reasoning>
    ###                                Action: Finish(<answer>)
    <blank line, next example>         <blank line, next example>

Plans end with ``###`` as in LLMCompiler's planner examples; ReAct traces are separated by a blank line as in
LLMCompiler's ReAct baseline (``configs/parallelqa_react``: LangChain's ``PromptTemplate.from_examples``).
The examples are data written for one set of tools; ``check_plan_examples`` / ``check_react_examples`` reject
examples that do not parse against the tools an agent is given. Pure text: no runtime imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.agents.planner.parse import parse_plan
from tether.agents.planner.plan import END_OF_PLAN, PlanError
from tether.agents.react_grammar import ReActFormatError, parse_turn, tool_specs

EXAMPLES_HEADER = "Here are some examples:"
PLAN_SEPARATOR = "###"
REACT_SEPARATOR = ""  # a blank line between traces


class FewShotError(ValueError):
    """An example that cannot be shown: the message names the example (``examples[i]``) and its field."""


@dataclass(frozen=True)
class PlanExample:
    """A question and the plan that answers it, in the planner's plan language: optional ``Thought:`` lines,
    numbered tool calls whose arguments may use ``$N`` / ``${N}``, then ``N. join()`` and ``<END_OF_PLAN>``."""

    question: str
    plan: str

    def __post_init__(self) -> None:
        _one_line(self.question, "question")
        if not self.plan.rstrip().endswith(END_OF_PLAN):
            raise FewShotError(f"plan: must end with {END_OF_PLAN}, got ...{self.plan[-30:]!r}")

    def render(self) -> str:
        return f"Question: {self.question}\n{self.plan.strip()}\n{PLAN_SEPARATOR}"


@dataclass(frozen=True)
class ReActStep:
    """One ReAct turn: the thought, the action (``tool(key=literal, ...)`` or ``Finish(answer)``) and, after a
    tool call, the observation as the agent shows it (``react.observation_text`` of the tool's value)."""

    thought: str
    action: str
    observation: str | None = None

    def __post_init__(self) -> None:
        _one_line(self.thought, "thought")
        _one_line(self.action, "action")
        if self.observation is not None:
            _one_line(self.observation, "observation")

    @property
    def turn(self) -> str:
        """The turn as the model writes it (what ``react_grammar`` admits)."""
        return f"Thought: {self.thought}\nAction: {self.action}"

    def render(self) -> str:
        return self.turn if self.observation is None else f"{self.turn}\nObservation: {self.observation}"


@dataclass(frozen=True)
class ReActExample:
    """A question and the ReAct trace that answers it: tool-call steps, each with its observation, and a last
    ``Finish`` step without one."""

    question: str
    steps: tuple[ReActStep, ...]

    def __post_init__(self) -> None:
        _one_line(self.question, "question")
        if not self.steps:
            raise FewShotError("steps: an example needs at least the Finish step")
        for i, step in enumerate(self.steps):
            last = i == len(self.steps) - 1
            if last != (step.observation is None):
                want = "no observation (it is the Finish)" if last else "an observation"
                raise FewShotError(f"steps[{i}]: needs {want}")

    def render(self) -> str:
        return "\n".join([f"Question: {self.question}", *(s.render() for s in self.steps)])


def _one_line(text: str, name: str) -> None:
    if not text.strip() or "\n" in text:
        raise FewShotError(f"{name}: must be one non-empty line, got {text!r}")


def render_examples(examples: Sequence[PlanExample] | Sequence[ReActExample]) -> str:
    """``Here are some examples:``, a blank line, then the examples in order, a blank line between two
    (plans end with ``###``); ``""`` without examples."""
    if not examples:
        return ""
    return EXAMPLES_HEADER + "\n\n" + "\n\n".join(e.render() for e in examples)


def check_plan_examples(examples: Iterable[Any], tools: Iterable[Any]) -> tuple[PlanExample, ...]:
    """``examples`` as a tuple, each a ``PlanExample`` whose plan parses (``parse_plan``) calling only
    ``tools``, ``join()`` last. Raises ``FewShotError``."""
    tools = list(tools)
    out = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, PlanExample):
            raise FewShotError(f"examples[{i}]: expected a PlanExample, got {type(ex).__name__}")
        try:
            parse_plan(ex.plan, tools)  # a plan ending with <END_OF_PLAN> parses only with join() before it
        except PlanError as exc:
            raise FewShotError(f"examples[{i}].plan: {exc}") from None
        out.append(ex)
    return tuple(out)


def check_react_examples(examples: Iterable[Any], tools: Iterable[Any]) -> tuple[ReActExample, ...]:
    """``examples`` as a tuple, each a ``ReActExample`` whose steps parse (``parse_turn``) for ``tools``:
    tool calls, then one ``Finish``. Raises ``FewShotError``."""
    specs = tool_specs(tools)
    out = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, ReActExample):
            raise FewShotError(f"examples[{i}]: expected a ReActExample, got {type(ex).__name__}")
        for j, step in enumerate(ex.steps):
            try:
                turn = parse_turn(step.turn, specs)
            except ReActFormatError as exc:
                raise FewShotError(f"examples[{i}].steps[{j}]: {exc}") from None
            if turn.is_finish != (j == len(ex.steps) - 1):
                raise FewShotError(f"examples[{i}].steps[{j}]: Finish must be the last step, and only it")
        out.append(ex)
    return tuple(out)
