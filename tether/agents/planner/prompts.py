"""The planner's and the joiner's prompts (LLMCompiler's, shortened for small models), and the joiner's
grammar. Pure text: no runtime imports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tether.agents.fewshot import PlanExample, render_examples
from tether.agents.planner.format import format_plan
from tether.agents.planner.plan import PlanTask, observation_text

MAX_OBSERVATION_CHARS = 400
MAX_ANSWER_CHARS = 200
MAX_THOUGHT_CHARS = 200

_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list"}


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_TYPES.get(k, str(k)) for k in kind)
    if kind == "object":
        return "dict"
    return _TYPES.get(kind, "any") if kind else "any"


def tool_signature(name: str, schema: dict[str, Any]) -> str:
    """``name(a: str, b: int = 3)`` from the tool's JSON schema (required arguments first, as listed)."""
    required = set(schema.get("required", ()))
    params = []
    for key, prop in schema.get("properties", {}).items():
        text = f"{key}: {_type(prop)}"
        if key not in required and "default" in prop:
            text += f" = {json.dumps(prop['default'])}"
        params.append(text)
    return f"{name}({', '.join(params)})"


def describe_tools(tools: Sequence[Any]) -> str:
    """One numbered line per tool (signature and description) and ``join()`` last."""
    lines = []
    for i, t in enumerate(tools, 1):
        schema = t.input_schema()
        line = f"{i}. {tool_signature(t.name, schema)}: {t.description}"
        args = [
            f"{k}: {p['description']}"
            for k, p in schema.get("properties", {}).items()
            if p.get("description")
        ]
        if args:
            line += " Arguments: " + "; ".join(args)
        lines.append(line)
    lines.append(f"{len(tools) + 1}. join(): collects the results; always the last action.")
    return "\n".join(lines)


def planner_system(tools: Sequence[Any], examples: Sequence[PlanExample] = ()) -> str:
    """The planner's system message: the tools (``describe_tools``), the plan rules, then the few-shot
    ``examples`` as LLMCompiler places them (``fewshot.render_examples``: each ``Question: ...``, its plan and
    ``###``, a blank line between two); nothing after the rules without examples."""
    text = (
        "Make a plan of actions that answers the question, running as many actions in parallel as possible. "
        "The actions:\n"
        f"{describe_tools(tools)}\n\n"
        "Rules:\n"
        "- One action per line: `N. tool(name=value, ...)`, numbered 1, 2, 3, ... with Python literals.\n"
        "- An argument may use an earlier action's result: $N alone, or ${N} inside a string.\n"
        "- A `Thought: ...` line may come before an action.\n"
        "- End with `N. join()` and then `<END_OF_PLAN>`.\n"
        "- Only use the actions above."
    )
    shots = render_examples(examples)
    return f"{text}\n\n{shots}" if shots else text


def render_value(value: Any, limit: int = MAX_OBSERVATION_CHARS) -> str:
    """An observation as the models see it: JSON (strings quoted), cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else observation_text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_round(tasks: Sequence[PlanTask], observations: Sequence[Any], plan_error: str | None) -> str:
    """A plan (``format_plan``), then one line per task's observation (``Observation N: value`` or
    ``Observation N: error: ...``), then the plan's error, if any."""
    parts = [format_plan(list(tasks)) if tasks else "(no task)"]
    for obs in sorted(observations, key=lambda o: o.task):
        body = f"error: {obs.error}" if obs.error is not None else render_value(obs.value)
        parts.append(f"Observation {obs.task}: {body}")
    if plan_error is not None:
        parts.append(f"Plan error: {plan_error}")
    return "\n".join(parts)


def planner_user(question: str, history: Sequence[tuple[str, str | None]]) -> str:
    """The question; on a replan, every earlier round (plan, observations, errors, the joiner's thought)."""
    if not history:
        return f"Question: {question}"
    rounds = []
    for i, (rendered, thought) in enumerate(history, 1):
        text = f"Previous plan {i} and its observations:\n{rendered}"
        if thought:
            text += f"\nThought: {thought}"
        rounds.append(text)
    return (
        f"Question: {question}\n\n" + "\n\n".join(rounds) + "\n\nThe previous plans did not answer the "
        "question. Make a new plan (numbered from 1) that does; use the observations above as constants."
    )


JOINER_SYSTEM = (
    "You read the results of a plan and answer the question. Reply with exactly two lines:\n"
    "Thought: <one short sentence of reasoning>\n"
    "Action: Finish(<the answer>)   -- when the observations answer the question\n"
    "or\n"
    "Action: Replan   -- when they do not and a new plan is needed.\n"
    "A number answer is the number itself; a name answer is the name. If the observations are errors, "
    "use Action: Replan."
)

JOINER_EXAMPLE_USER = (
    "Question: How many years after Mont Blanc was the Matterhorn first climbed?\n"
    '1. lookup(table="mountains", key="Mont Blanc", field="first_ascent_year")\n'
    '2. lookup(table="mountains", key="Matterhorn", field="first_ascent_year")\n'
    '3. calculator(expression="${2} - ${1}")\n'
    "4. join()\n<END_OF_PLAN>\nObservation 1: 1786\nObservation 2: 1865\nObservation 3: 79.0"
)
JOINER_EXAMPLE_ASSISTANT = "Thought: 1865 - 1786 = 79 years.\nAction: Finish(79)"


def joiner_user(question: str, rendered_round: str, final: bool) -> str:
    tail = "\nThis is the last round: answer with Action: Finish(...)." if final else ""
    return f"Question: {question}\n{rendered_round}{tail}"


def joiner_grammar(allow_replan: bool) -> str:
    """``Thought: ...`` then ``Action: Finish(<answer>)`` (no newline or ``)`` in it) or ``Action: Replan``."""
    finish = f'"Action: Finish(" [^\\n)]{{1,{MAX_ANSWER_CHARS}}} ")"'
    action = f'({finish} | "Action: Replan")' if allow_replan else finish
    return f'root ::= "Thought: " [^\\n]{{0,{MAX_THOUGHT_CHARS}}} "\\n" {action}\n'
