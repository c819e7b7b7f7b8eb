"""``parse_plan``: a planner's text -> ``PlanTask``s, line by line (``PlanBuilder`` is shared with streaming).

Lines (after stripping whitespace), following SqueezeAILab/LLMCompiler ``src/llm_compiler/output_parser.py``
(``THOUGHT_PATTERN``, ``ACTION_PATTERN``, ``ID_PATTERN``, ``END_OF_PLAN``):

* ``N. tool(args)``: a task; ``args`` are Python literals with ``$N`` / ``${N}`` references (see
  ``literals``); an optional trailing ``# comment`` is ignored.
* ``{"id": N, "tool": "name", "args": {...}}``: the same task as a JSON line; ``{"$ref": M}`` anywhere in
  ``args`` is a bare reference, ``$M`` / ``${M}`` inside a JSON string a reference in a string (``\\$`` a
  literal dollar). ``args`` may also be a list (positional arguments).
* ``Thought: text``: kept as the next task's ``thought``.
* ``N. join()``: the last task, optionally followed by ``<END_OF_PLAN>`` (same line or later). After it only
  blank lines, ``Thought:`` lines and ``<END_OF_PLAN>`` may follow.
* blank lines are skipped; anything else is malformed.

Indices are positive, unique and increasing (LLMCompiler numbers 1, 2, ...; gaps are accepted); a reference
must name an index listed earlier. A plan may end without ``join()`` (a truncated plan); callers that need one
check ``tasks[-1].is_join``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from tether.agents.planner.literals import ArgsError, parse_call_args, split_refs
from tether.agents.planner.plan import END_OF_PLAN, JOIN, PlanError, PlanTask, TaskRef, collect_refs

_TASK = re.compile(r"(\d{1,18})\.\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\((.*)")  # int() refuses > 4300 digits
_NUMBERED = re.compile(r"\d{1,18}\.")


def tool_names(tools: Any) -> frozenset[str] | None:
    """Names of ``tools``: ``None``, names, a mapping keyed by name, OpenAI tool dicts or objects with
    ``.name``."""
    if tools is None:
        return None
    if isinstance(tools, Mapping):
        return frozenset(str(k) for k in tools)
    names = set()
    for t in tools:
        if isinstance(t, str):
            names.add(t)
        elif isinstance(t, Mapping):
            names.add(str(t.get("function", t)["name"]))
        else:
            names.add(str(t.name))
    return frozenset(names)


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            ref = value["$ref"]
            if isinstance(ref, bool) or not isinstance(ref, int):
                raise ArgsError(f"'$ref' must be an integer, got {ref!r}")
            return TaskRef(ref)
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, str):
        return split_refs(value, "\\$")
    return value


def _json_task(text: str) -> tuple[int, str, tuple[Any, ...], dict[str, Any]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgsError(f"bad JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # an integer over 4300 digits, nesting past the stack
        raise ArgsError(f"bad JSON: {exc}") from None
    if not isinstance(obj, dict) or set(obj) - {"id", "tool", "args", "thought"}:
        raise ArgsError('a JSON task is {"id": N, "tool": "name", "args": {...}}')
    idx, tool, args = obj.get("id"), obj.get("tool"), obj.get("args", {})
    if isinstance(idx, bool) or not isinstance(idx, int):
        raise ArgsError(f"'id' must be an integer, got {idx!r}")
    if not isinstance(tool, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", tool):
        raise ArgsError(f"'tool' must be a tool name, got {tool!r}")
    try:
        if isinstance(args, dict):
            return idx, tool, (), {k: _json_value(v) for k, v in args.items()}
        if isinstance(args, list):
            return idx, tool, tuple(_json_value(v) for v in args), {}
    except RecursionError:
        raise ArgsError("'args' is nested too deeply") from None
    raise ArgsError(f"'args' must be an object or a list, got {type(args).__name__}")


class PlanBuilder:
    """Reads a plan one line at a time; ``add_line`` returns the line's task, if it has one, or raises
    ``PlanError`` naming the line (and task)."""

    def __init__(self, tools: Any = None) -> None:
        self.tools = tool_names(tools)
        self.line_no = 0
        self.indices: dict[int, int] = {}  # task index -> its line
        self.thoughts: list[str] = []
        self.joined = False

    def add_line(self, line: str) -> PlanTask | None:
        self.line_no += 1
        text = line.strip()
        if not text:
            return None
        if text.startswith("Thought:"):
            self.thoughts.append(text[len("Thought:") :].strip())
            return None
        if text == END_OF_PLAN:
            if not self.joined:
                raise PlanError(f"{END_OF_PLAN} before join()", kind="malformed", line=self.line_no)
            return None
        if self.joined:
            raise PlanError(
                f"only blank, Thought: and {END_OF_PLAN} lines may follow join(), got {text[:40]!r}",
                kind="after_join",
                line=self.line_no,
            )
        ends_plan = text.endswith(END_OF_PLAN)
        if ends_plan:
            text = text[: -len(END_OF_PLAN)].rstrip()
        task = self._task(text)
        if ends_plan and not task.is_join:
            raise PlanError(
                f"{END_OF_PLAN} before join()", kind="malformed", line=self.line_no, task=task.idx
            )
        return task

    def _task(self, text: str) -> PlanTask:
        line, idx = self.line_no, None
        try:
            if text.startswith("{"):
                idx, tool, args, kwargs = _json_task(text)
            else:
                m = _TASK.fullmatch(text)
                if m is None:
                    number = _NUMBERED.match(text)
                    idx = int(number.group()[:-1]) if number else None
                    raise ArgsError(f"expected 'N. tool(args)', got {text[:60]!r}")
                idx, tool = int(m.group(1)), m.group(2)
                args, kwargs = parse_call_args(m.group(3))
        except ArgsError as exc:
            raise PlanError(str(exc), kind="malformed", line=line, task=idx) from None
        if idx < 1:
            raise PlanError("task indices are positive integers", kind="order", line=line, task=idx)
        if idx in self.indices:
            raise PlanError(
                f"duplicate task index {idx} (first on line {self.indices[idx]})",
                kind="duplicate",
                line=line,
                task=idx,
            )
        last = max(self.indices, default=0)
        if idx < last:
            raise PlanError(f"task {idx} comes after task {last}: indices must increase", kind="order",
                            line=line, task=idx)  # fmt: skip
        if tool == JOIN:
            if args or kwargs:
                raise PlanError("join() takes no arguments", kind="malformed", line=line, task=idx)
            deps = frozenset(self.indices)
            self.joined = True
        else:
            if self.tools is not None and tool not in self.tools:
                raise PlanError(f"unknown tool {tool!r}", kind="unknown_tool", line=line, task=idx)
            refs = collect_refs(args) | collect_refs(kwargs)
            for ref in sorted(refs):
                if ref not in self.indices:
                    where = "a later task" if ref >= idx else "a missing task"
                    raise PlanError(f"${ref} refers to {where}", kind="reference", line=line, task=idx)
            deps = frozenset(refs)
        self.indices[idx] = line
        thought = "\n".join(self.thoughts) if self.thoughts else None
        self.thoughts = []
        return PlanTask(idx, tool, args, kwargs, deps, thought)


def parse_plan(text: str, tools: Collection[str] | Mapping[str, Any] | None = None) -> list[PlanTask]:
    """The tasks of a plan, in order. ``tools`` (names, a mapping keyed by name, OpenAI tool dicts or objects
    with ``.name``), when given, are the only tools allowed besides ``join``. Raises ``PlanError``."""
    builder = PlanBuilder(tools)
    tasks = []
    for line in text.split("\n"):
        task = builder.add_line(line)
        if task is not None:
            tasks.append(task)
    return tasks
