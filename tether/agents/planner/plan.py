"""Plan values: ``PlanTask``, references (``TaskRef``, ``RefString``), ``PlanError`` and ``resolve_args``.

A plan is LLMCompiler's (Kim et al., "An LLM Compiler for Parallel Function Calling"; the rules follow
SqueezeAILab/LLMCompiler ``src/llm_compiler/output_parser.py``): numbered tool calls whose arguments may name
earlier tasks' observations with ``$N`` / ``${N}``, closed by ``join()``.

Substitution (``resolve_args``): a bare reference (``add($1, 2)``, or inside a list or dict) becomes the
observation itself, typed as the tool returned it; a reference inside a string (``"compare $1 and ${2}"``)
becomes the observation's string form: a ``str`` observation verbatim, anything else as compact JSON
(``3`` -> ``"3"``, ``None`` -> ``"null"``, ``["a"]`` -> ``'["a"]'``; pydantic models via ``model_dump``;
what JSON cannot encode via ``str``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JOIN = "join"
END_OF_PLAN = "<END_OF_PLAN>"


class PlanError(ValueError):
    """A plan that cannot run. ``line`` (1-based, in the planner's text) and ``task`` (the task's index) name
    where, when known; ``kind`` says what: ``"malformed"``, ``"reference"``, ``"duplicate"``, ``"order"``,
    ``"unknown_tool"``, ``"after_join"`` or ``"observation"`` (``resolve_args`` lacks one)."""

    def __init__(self, reason: str, *, kind: str, line: int | None = None, task: int | None = None) -> None:
        where = ", ".join(
            part
            for part in (f"line {line}" if line else "", f"task {task}" if task is not None else "")
            if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason, self.kind, self.line, self.task = reason, kind, line, task


@dataclass(frozen=True)
class TaskRef:
    """A bare reference ``$idx``: substituted by task ``idx``'s observation, unchanged."""

    idx: int


@dataclass(frozen=True)
class RefString:
    """A string with references inside: ``parts`` alternate literal text and ``TaskRef``s
    (``"compare $1 and ${2}"`` -> ``("compare ", TaskRef(1), " and ", TaskRef(2))``)."""

    parts: tuple[str | TaskRef, ...]

    @property
    def refs(self) -> frozenset[int]:
        return frozenset(p.idx for p in self.parts if isinstance(p, TaskRef))


@dataclass(frozen=True)
class PlanTask:
    """One task: ``tool(*args, **kwargs)`` once the tasks in ``deps`` have observations. ``join`` tasks have
    no arguments and depend on every earlier task. ``thought`` is the ``Thought:`` text written just before
    the task (lines joined with newlines), if any."""

    idx: int
    tool: str
    args: tuple[Any, ...] = field(default=(), hash=False)
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    deps: frozenset[int] = field(default=frozenset(), hash=False)
    thought: str | None = field(default=None, hash=False)

    @property
    def is_join(self) -> bool:
        return self.tool == JOIN


def collect_refs(value: Any) -> set[int]:
    """Indices referenced anywhere in a parsed argument value."""
    if isinstance(value, TaskRef):
        return {value.idx}
    if isinstance(value, RefString):
        return set(value.refs)
    if isinstance(value, (list, tuple)):
        return set().union(*(collect_refs(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(collect_refs(k) | collect_refs(v) for k, v in value.items()))
    return set()


def observation_text(observation: Any) -> str:
    """The string form an observation takes inside a string argument (see the module docstring)."""
    if isinstance(observation, str):
        return observation
    if hasattr(observation, "model_dump") and callable(observation.model_dump):
        observation = observation.model_dump(mode="json")
    try:
        return json.dumps(observation, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(observation)


def resolve_args(task: PlanTask, observations: Mapping[int, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` of ``task`` with every reference replaced by its observation (bare: the value as
    is; inside a string: ``observation_text``). Raises ``PlanError`` (kind ``"observation"``) naming the
    task when an observation is missing."""

    def sub(value: Any) -> Any:
        if isinstance(value, TaskRef):
            if value.idx not in observations:
                raise PlanError(f"no observation for ${value.idx}", kind="observation", task=task.idx)
            return observations[value.idx]
        if isinstance(value, RefString):
            return "".join(p if isinstance(p, str) else observation_text(sub(p)) for p in value.parts)
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, tuple):
            return tuple(sub(v) for v in value)
        if isinstance(value, dict):
            return {sub(k): sub(v) for k, v in value.items()}
        return value

    return tuple(sub(a) for a in task.args), {k: sub(v) for k, v in task.kwargs.items()}
