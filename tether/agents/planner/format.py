"""``format_plan``: tasks back to the numbered form (for replanning prompts); ``parse_plan`` reads it back
to equal tasks."""

from __future__ import annotations

import keyword
import math
from collections.abc import Iterable
from typing import Any

from tether.agents.planner.plan import END_OF_PLAN, PlanTask, RefString, TaskRef

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\$"}


def py_str_body(text: str) -> str:
    """``text`` escaped for the inside of a double-quoted plan string (``$`` as ``\\$``, so it is never read
    as a reference; other control characters as ``\\xNN``)."""
    return "".join(
        _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text
    )


def py_literal(value: Any) -> str:
    """A parsed argument value written back as plan source (references as ``$N``, ``${N}`` in strings)."""
    if isinstance(value, TaskRef):
        return f"${value.idx}"
    if isinstance(value, RefString):
        return (
            '"'
            + "".join(py_str_body(p) if isinstance(p, str) else "${" + str(p.idx) + "}" for p in value.parts)
            + '"'
        )
    if isinstance(value, str):
        return '"' + py_str_body(value) + '"'
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("NaN has no plan literal")
        return repr(value) if math.isfinite(value) else ("1e999" if value > 0 else "-1e999")
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"{type(value).__name__} has no plan literal")


def format_task(task: PlanTask) -> str:
    """``N. tool(args)``, preceded by its ``Thought:`` lines."""
    for key in task.kwargs:
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ValueError(f"task {task.idx}: argument name {key!r} cannot be a keyword argument")
    args = [py_literal(a) for a in task.args] + [f"{k}={py_literal(v)}" for k, v in task.kwargs.items()]
    thoughts = "".join(f"Thought: {t}\n" for t in task.thought.split("\n")) if task.thought else ""
    return f"{thoughts}{task.idx}. {task.tool}({', '.join(args)})"


def format_plan(tasks: Iterable[PlanTask], *, end_of_plan: bool = True) -> str:
    """The numbered form of ``tasks``, one per line, newline-terminated; ``<END_OF_PLAN>`` follows a final
    ``join()`` when ``end_of_plan``. Raises ``ValueError`` for a value with no literal (NaN, a set, ...)."""
    tasks = list(tasks)
    lines = [format_task(t) for t in tasks]
    if tasks and end_of_plan and tasks[-1].is_join:
        lines.append(END_OF_PLAN)
    return "".join(line + "\n" for line in lines)
