"""Reference trajectories of ``bench/agent_questions.py``'s questions, for the forced mode of ``tether bench
agents`` (docs/agents.md, "Benchmark"): the text a correct planner and a correct ReAct agent write for a
question, built from the question's own structure (its ``k`` lookups and its expected answer).

- planner: the plan (one ``Thought:`` line, the ``k`` lookups as tasks ``1..k``, then ``k+1. join()`` and
  ``<END_OF_PLAN>``, as ``plan_grammar`` admits it) and the joiner's reply (``Thought: ...`` then
  ``Action: Finish(<answer>)``, as ``joiner_grammar`` admits it);
- ReAct: one turn per lookup (``Thought: I need the <field> of <key>.`` then ``Action: lookup(...)``, in the
  question's order) and a last turn ``Action: Finish(<answer>)`` with the joiner's thought.

Both agents make the same ``k`` tool calls (``calls``), and the combining step (sum, mean, conversion,
comparison) is the final answer's, as in the question set. ``Reference.script(agent)`` is the texts of that
agent's LLM calls, in order.

    ref = make_reference(make_questions(4, 1, 0)[0])
    ref.plan, ref.joiner, ref.react, ref.calls, ref.answer
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.agent_questions import Question

END_OF_PLAN = "<END_OF_PLAN>"
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


class ReferenceError(ValueError):
    """A question whose reference cannot be written in the agents' formats (the message names the field)."""


@dataclass(frozen=True)
class Reference:
    """The reference trajectory of ``question`` (see the module docstring)."""

    question: Question
    plan: str
    joiner: str
    react: tuple[str, ...]
    calls: tuple[tuple[str, dict[str, Any]], ...]
    answer: str

    def script(self, agent: str) -> tuple[str, ...]:
        """The texts of ``agent``'s LLM calls, in order: ``planner`` (plan, joiner) or ``react`` (its turns)."""
        if agent == "planner":
            return (self.plan, self.joiner)
        if agent == "react":
            return self.react
        raise ReferenceError(f"agent: no reference for {agent!r} (planner, react)")


def quote(text: str, *, dollar: bool) -> str:
    """``text`` as a double-quoted literal both grammars admit; ``dollar``: ``$`` written ``\\$`` (plans, where a
    bare ``$`` would start a reference)."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c == "$" and dollar:
            out.append("\\$")
        elif ord(c) < 0x20:
            raise ReferenceError(f"argument {text!r}: control character {c!r} has no literal")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def format_answer(question: Question) -> str:
    """The expected answer as the final answer writes it: the name, or the number with at most 4 decimals."""
    value = question.expected
    if isinstance(value, str):
        text = value
    elif not math.isfinite(value):
        raise ReferenceError(f"expected: {value!r} has no answer text")
    elif float(value).is_integer():
        text = str(int(value))
    else:
        text = f"{value:.4f}".rstrip("0").rstrip(".")
    if not text or any(c in text for c in '\n()"'):
        raise ReferenceError(f"expected: {text!r} cannot be written inside Finish(...)")
    return text


def final_thought(question: Question, answer: str) -> str:
    """The one-sentence reasoning of the final answer (the joiner's and ReAct's last turn)."""
    k = question.k
    if question.kind == "sum":
        return f"The {k} values add up to {answer}."
    if question.kind == "mean":
        return f"The mean of the {k} values is {answer}."
    if question.kind == "convert_sum":
        return f"Converted from metres to feet, the {k} values add up to {answer}."
    if question.kind in ("max", "min"):
        word = "largest" if question.kind == "max" else "smallest"
        return f"{answer} has the {word} value of the {k}."
    raise ReferenceError(f"kind: no reference for question kind {question.kind!r}")


def _call(lookup: Any, *, dollar: bool) -> str:
    args = (("table", lookup.table), ("key", lookup.key), ("field", lookup.field))
    return "lookup(" + ", ".join(f"{name}={quote(value, dollar=dollar)}" for name, value in args) + ")"


def make_reference(question: Question) -> Reference:
    """The reference trajectory of ``question``; ``ReferenceError`` when its answer or an argument cannot be
    written in the agents' formats."""
    answer = format_answer(question)
    finish = f"Thought: {final_thought(question, answer)}\nAction: Finish({answer})"
    fields = sorted({lk.field for lk in question.lookups})
    lines = [f"Thought: look up the {' and '.join(fields)} of each, then join"]
    lines += [f"{i}. {_call(lk, dollar=True)}" for i, lk in enumerate(question.lookups, 1)]
    lines += [f"{question.k + 1}. join()", END_OF_PLAN]
    turns = tuple(
        f"Thought: I need the {lk.field} of {lk.key}.\nAction: {_call(lk, dollar=False)}"
        for lk in question.lookups
    )
    calls = tuple(
        ("lookup", {"table": lk.table, "key": lk.key, "field": lk.field}) for lk in question.lookups
    )
    return Reference(question, "\n".join(lines), finish, (*turns, finish), calls, answer)
