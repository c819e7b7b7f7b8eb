"""``plan_grammar``: an EBNF grammar (xgrammar's GBNF dialect, root rule ``root``) of numbered plans calling
the given tools, for constrained decoding of the planner.

Shape (``K = max_tasks``): an optional ``Thought: ...`` line before each task; task ``k`` is
``k. name(key=value, ...)`` numbered 1, 2, ... in order; the plan ends with ``n. join()\\n<END_OF_PLAN>``
after at most ``K`` tool calls. Arguments are keyword arguments in the schema's property order, required
ones present, each a Python literal of the property's schema: strings double-quoted (at most a schema's
``maxLength``, capped at ``max_string_length``, else unbounded: see ``_Values.string``; ``$`` written
``\\$``, references as ``${N}``), integers and numbers
possibly a bare ``$N``, booleans ``True``/``False``, ``None``, enums/consts as their literals, arrays and
objects of literals (at most ``max_items`` items), ``$ref``s to ``$defs``; schemas it does not model accept
any scalar, list of scalars or flat dict. References in task ``k`` name only tasks ``1..k-1``, so every plan
the grammar accepts parses with ``parse_plan(text, tools)`` (value constraints such as ``minimum`` or
``pattern`` are left to the tool's own validation).
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterable
from typing import Any

from tether.agents.planner.format import py_literal
from tether.agents.planner.plan import END_OF_PLAN, JOIN

_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INT = '"-"? ("0" | [1-9] [0-9]{0,15})'


class PlanGrammarError(ValueError):
    """A tool that plans cannot call: a bad or reserved name, or an argument name that is not a Python
    identifier."""


def _lit(text: str) -> str:
    return json.dumps(text)


def _tool_specs(tools: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for t in tools:
        if isinstance(t, dict):
            fn = t.get("function", t)
            name, schema = fn["name"], fn.get("parameters") or {}
        else:
            name, schema = t.name, t.input_schema()
        if not _TOOL_NAME.fullmatch(name) or name == JOIN:
            raise PlanGrammarError(f"tool name {name!r} cannot appear in a plan")
        for key in schema.get("properties", {}):
            if not key.isidentifier() or keyword.iskeyword(key):
                raise PlanGrammarError(f"tool {name!r}: argument {key!r} is not a Python identifier")
        specs.append((name, schema))
    return specs


class _Rules:
    def __init__(self, max_string_length: int, max_items: int) -> None:
        self.rules: dict[str, str] = {}
        self.max_string, self.max_items = max_string_length, max_items
        self._n = 0

    def add(self, prefix: str, body: str | None = None) -> str:
        self._n += 1
        name = f"{prefix}_{self._n}"
        self.rules[name] = body if body is not None else ""
        return name

    def ordered(self, prefix: str, items: list[tuple[str, bool]]) -> str:
        """A rule for ``items`` (expression, required) in order, separated by ``", "``, optional ones
        omissible."""
        first, rest = "", ""
        for expr, required in reversed(items):
            new_rest = f'", " {expr} {rest}' if required else f'(", " {expr})? {rest}'
            new_first = f"{expr} {rest}" if required else f"({expr} {rest} | {first or chr(34) * 2})"
            rest = self.add(prefix + "r", new_rest)
            first = self.add(prefix + "f", new_first)
        return first or '""'


class _Values:
    """Value expressions of one tool's schemas for task ``k`` (references to ``1..k-1``)."""

    def __init__(self, rules: _Rules, k: int, common: dict[str, str]) -> None:
        self.r, self.c = rules, common
        self.use_defs({})
        alts = " | ".join(_lit(str(i)) for i in range(1, k))
        self.ref = f'"$" ({alts})' if k > 1 else None
        schar = '[^"\\\\$\\x00-\\x1f] | "\\\\" ["\\\\nt$]' + (f' | "${{" ({alts}) "}}"' if k > 1 else "")
        self.schar = rules.add(f"schar{k}", schar)
        self.num = rules.add(f"num{k}", f"{common['num']}" + (f" | {self.ref}" if self.ref else ""))
        self.int = rules.add(f"int{k}", _INT + (f" | {self.ref}" if self.ref else ""))
        self.str = self.string(0, rules.max_string)
        scalar = rules.add(f"scalar{k}", f'{self.str} | {self.num} | "True" | "False" | "None"')
        self.any = rules.add(f"any{k}", f"{scalar} | {self.array(scalar, 0)} | {self.dict(scalar)}")

    def use_defs(self, defs: dict[str, Any]) -> None:
        """The ``$defs`` that ``$ref``s name from now on (one tool's)."""
        self.defs: dict[str, Any] = defs
        self._def_rules: dict[str, str] = {}

    def string(self, lo: int, hi: int) -> str:
        """A string of ``lo..hi`` characters; the default bounds (``0..max_string_length``) are written as an
        unbounded ``schar*``: xgrammar's bounded repetition of a rule makes every mask fill inside a string
        cost tens to hundreds of ms on a 49K vocabulary, and the call's ``max_tokens`` bounds it anyway."""
        if (lo, hi) == (0, self.r.max_string):
            return f'"\\"" {self.schar}* "\\""'
        return f'"\\"" {self.schar}{{{lo},{hi}}} "\\""'

    def array(self, item: str, lo: int, hi: int | None = None) -> str:
        hi = max(lo, 1, min(hi or self.r.max_items, self.r.max_items))
        if lo == 0:
            return f'"[" ({item} (", " {item}){{0,{hi - 1}}})? "]"'
        return f'"[" {item} (", " {item}){{{lo - 1},{hi - 1}}} "]"'

    def dict(self, value: str) -> str:
        entry = f'{self.str} ": " {value}'
        return f'"{{" ({entry} (", " {entry}){{0,{self.r.max_items - 1}}})? "}}"'

    def value(self, schema: Any) -> str:
        if not isinstance(schema, dict):
            return self.any
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            if name not in self.defs:
                return self.any
            if name not in self._def_rules:
                self._def_rules[name] = rule = self.r.add("def")
                self.r.rules[rule] = self.value(self.defs[name])
            return self._def_rules[name]
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            return "(" + " | ".join(_lit(py_literal(v)) for v in values) + ")"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return "(" + " | ".join(self.value(s) for s in schema[key]) + ")"
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            return self.value(schema["allOf"][0])
        kind = schema.get("type")
        if isinstance(kind, list):
            return "(" + " | ".join(self.value({**schema, "type": t}) for t in kind) + ")"
        if kind == "string":
            hi = min(int(schema.get("maxLength", self.r.max_string)), self.r.max_string)
            return self.string(min(int(schema.get("minLength", 0)), hi), hi)
        if kind == "integer":
            return self.int
        if kind == "number":
            return self.num
        if kind == "boolean":
            return '("True" | "False")'
        if kind == "null":
            return '"None"'
        if kind == "array":
            item = self.r.add("item", self.value(schema.get("items", {})))
            return self.array(item, int(schema.get("minItems", 0)), schema.get("maxItems"))
        if kind == "object" or "properties" in schema:
            props = schema.get("properties")
            if not props:
                extra = schema.get("additionalProperties", True)
                return self.dict(self.value(extra) if isinstance(extra, dict) else self.any)
            required = set(schema.get("required", ()))
            items = [(f"{_lit(py_literal(key))} \": \" {self.value(s)}", key in required)
                     for key, s in props.items()]  # fmt: skip
            return f'"{{" {self.r.ordered("obj", items)} "}}"'
        return self.any


def plan_grammar(
    tools: Iterable[Any], *, max_tasks: int = 8, max_string_length: int = 200, max_items: int = 16
) -> str:
    """EBNF text of plans calling ``tools`` (OpenAI tool dicts ``{"type": "function", "function": {"name",
    "description", "parameters"}}`` or objects with ``.name`` and ``.input_schema()``, like ``tools.Tool``):
    at most ``max_tasks`` tool calls, then ``join()`` and ``<END_OF_PLAN>``. Raises ``PlanGrammarError``."""
    if max_tasks < 0 or max_string_length < 1 or max_items < 1:
        raise ValueError("max_tasks >= 0, max_string_length >= 1 and max_items >= 1")
    specs = _tool_specs(tools)
    r = _Rules(max_string_length, max_items)
    common = {"num": f'{_INT} ("." [0-9]{{1,15}})? ([eE] [+-]? [0-9]{{1,3}})?'}
    r.rules["thought"] = f'"Thought: " [^\\x00-\\x1f]{{0,{max_string_length}}} "\\n"'
    for k in range(1, max_tasks + 2):
        join = _lit(f"{k}. {JOIN}()\n{END_OF_PLAN}")
        if k == max_tasks + 1 or not specs:
            r.rules[f"plan_{k}"] = f"thought? {join}"
            break
        calls = []
        values = _Values(r, k, common)
        for name, schema in specs:
            values.use_defs(schema.get("$defs") or schema.get("definitions") or {})
            required = set(schema.get("required", ()))
            items = [(f"{_lit(key + '=')} {values.value(s)}", key in required)
                     for key, s in schema.get("properties", {}).items()]  # fmt: skip
            calls.append(f'{_lit(name + "(")} {r.ordered("args", items)} ")"')
        call = r.add(f"call{k}", " | ".join(calls))
        r.rules[f"plan_{k}"] = f'thought? ({_lit(f"{k}. ")} {call} "\\n" plan_{k + 1} | {join})'
    body = "\n".join(f"{name} ::= {rule}" for name, rule in r.rules.items())
    return f"root ::= plan_1\n{body}\n"
