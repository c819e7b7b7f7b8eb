"""The ReAct turn format: its grammar (xgrammar's EBNF dialect, root rule ``root``), its parser and the tool
signatures the system prompt lists. Torch-free; xgrammar is needed only to use the grammar.

A turn is one thought and one action, on two lines (Yao et al., *ReAct*, 2023):

    Thought: I need the population of Paris.
    Action: lookup(table="cities", key="Paris", field="population")

or, to end, ``Action: Finish("2,102,650")`` (the answer: a string literal, a number or bare text without
parentheses, quotes or newlines). Arguments are keyword arguments written as Python literals, in the
schema's property order (required ones present). ``parse_turn`` also reads what an unconstrained model
writes: positional arguments (in the schema's property order), one JSON object, ``Finish[answer]``.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FINISH = "Finish"
_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = '"-"? ("0" | [1-9] [0-9]{0,15})'
_NUM = f'{_INT} ("." [0-9]{{1,15}})? ([eE] [+-]? [0-9]{{1,3}})?'


class ReActFormatError(ValueError):
    """A turn that is not ``Thought: ...`` then ``Action: tool(args)`` / ``Action: Finish(answer)`` for the
    known tools (the message says what is wrong; the agent shows it to the model)."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the ReAct format sees it: its name, description and JSON schema of arguments."""

    name: str
    description: str
    schema: dict[str, Any]

    @property
    def params(self) -> list[str]:
        return list(self.schema.get("properties", {}))


@dataclass(frozen=True)
class Turn:
    """A parsed turn: the thought, then either ``answer`` (``Finish``) or ``tool`` with ``args``."""

    thought: str
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None

    @property
    def is_finish(self) -> bool:
        return self.answer is not None


def tool_specs(tools: Iterable[Any]) -> list[ToolSpec]:
    """``ToolSpec``s of ``tools``: ``tools.Tool``s (``.name``, ``.description``, ``.input_schema()``) or OpenAI
    tool dicts. ``ValueError`` for a name that is not an identifier, ``Finish``, or argument names that
    are not Python identifiers."""
    specs = []
    for t in tools:
        if isinstance(t, Mapping):
            fn = t.get("function", t)
            spec = ToolSpec(fn["name"], fn.get("description") or "", dict(fn.get("parameters") or {}))
        else:
            spec = ToolSpec(t.name, t.description or "", t.input_schema())
        if not _TOOL_NAME.fullmatch(spec.name) or spec.name == FINISH:
            raise ValueError(f"tool name {spec.name!r} cannot be a ReAct action")
        for key in spec.params:
            if not key.isidentifier() or keyword.iskeyword(key):
                raise ValueError(f"tool {spec.name!r}: argument {key!r} is not a Python identifier")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tool names in {names}")
    return specs


# -- the prompt's signatures ------------------------------------------------------------------------------------
def _type_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return " | ".join(_py(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_name(s) for s in schema[key])
    kind = schema.get("type")
    names = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None",
             "array": "list", "object": "dict"}  # fmt: skip
    if isinstance(kind, list):
        return " | ".join(names.get(k, "any") for k in kind)
    return names.get(kind, "any")


def signature(spec: ToolSpec) -> str:
    """``name(arg: type, opt: type = default)``, for the system prompt."""
    props = spec.schema.get("properties", {})
    required = set(spec.schema.get("required", ()))
    parts = []
    for key, sub in props.items():
        text = f"{key}: {_type_name(sub)}"
        if key not in required and isinstance(sub, dict) and "default" in sub:
            text += f" = {_py(sub['default'])}"
        parts.append(text)
    return f"{spec.name}({', '.join(parts)})"


# -- grammar ----------------------------------------------------------------------------------------------------
def _py(value: Any) -> str:
    """A JSON value as a Python literal (strings double-quoted)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_py(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"{type(value).__name__} has no literal")


class _Rules:
    def __init__(self, max_string_length: int) -> None:
        self.rules: dict[str, str] = {}
        self.max_string = max_string_length
        self._n = 0
        self.rules["schar"] = '[^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\nt]'
        self.rules["int"] = _INT
        self.rules["num"] = _NUM
        # unbounded: xgrammar's bounded repetition of a rule (``schar{0,N}``) makes every mask fill inside a
        # string cost hundreds of ms on SmolLM2's vocabulary; the turn's max_tokens bounds it instead
        self.rules["str"] = '"\\"" schar* "\\""'
        self.rules["scalar"] = 'str | num | "True" | "False" | "None"'
        self.rules["list"] = '"[" (scalar (", " scalar){0,15})? "]"'

    def add(self, prefix: str, body: str) -> str:
        self._n += 1
        name = f"{prefix}_{self._n}"
        self.rules[name] = body
        return name

    @staticmethod
    def string(lo: int, hi: int) -> str:
        return f'"\\"" schar{{{lo},{hi}}} "\\""'

    def value(self, schema: Any) -> str:
        if not isinstance(schema, dict):
            return "(scalar | list)"
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            return "(" + " | ".join(json.dumps(_py(v)) for v in values) + ")"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return "(" + " | ".join(self.value(s) for s in schema[key]) + ")"
        kind = schema.get("type")
        if isinstance(kind, list):
            return "(" + " | ".join(self.value({**schema, "type": t}) for t in kind) + ")"
        if kind == "string":
            hi = min(int(schema.get("maxLength", self.max_string)), self.max_string)
            lo = min(int(schema.get("minLength", 0)), hi)
            return "str" if (lo, hi) == (0, self.max_string) else self.string(lo, hi)
        if kind == "integer":
            return "int"
        if kind == "number":
            return "num"
        if kind == "boolean":
            return '("True" | "False")'
        if kind == "null":
            return '"None"'
        if kind == "array":
            item = self.add("item", self.value(schema.get("items", {})))
            return f'"[" ({item} (", " {item}){{0,15}})? "]"'
        return "(scalar | list)"  # objects and schemas not modelled: a scalar or a flat list

    def ordered(self, items: list[tuple[str, bool]]) -> str:
        """``items`` (expression, required) in order, separated by ``", "``, optional ones omissible."""
        first, rest = '""', '""'
        for expr, required in reversed(items):
            if required:
                new_rest, new_first = f'", " {expr} {rest}', f"{expr} {rest}"
            else:
                new_rest, new_first = f'(", " {expr})? {rest}', f"({expr} {rest} | {first})"
            rest, first = self.add("rest", new_rest), self.add("args", new_first)
        return first


def react_grammar(
    tools: Iterable[Any],
    *,
    max_thought_chars: int = 200,
    max_string_length: int = 200,
    max_answer_chars: int = 200,
    finish_only: bool = False,
    allow_finish: bool = True,
) -> str:
    """EBNF of one ReAct turn calling ``tools`` (see the module docstring): ``"Thought: " [^\\n]{0,N}
    "\\nAction: " (tool(kw=literal, ...) | Finish(answer))``. ``finish_only``: the action can only be
    ``Finish`` (the last allowed turn); ``allow_finish=False``: only tool calls (at least one tool needed)."""
    if min(max_thought_chars, max_string_length, max_answer_chars) < 1:
        raise ValueError("the length limits must be >= 1")
    r = _Rules(max_string_length)
    answer = f'str | num | [^\\n()"] [^\\n()]{{0,{max_answer_chars - 1}}}'
    r.rules["finish"] = f'"{FINISH}(" ({answer}) ")"'
    actions = ["finish"] if allow_finish or finish_only else []
    if not finish_only:
        for spec in tool_specs(tools):
            required = set(spec.schema.get("required", ()))
            items = [(f"{json.dumps(key + '=')} {r.value(sub)}", key in required)
                     for key, sub in spec.schema.get("properties", {}).items()]  # fmt: skip
            actions.append(r.add("call", f'{json.dumps(spec.name + "(")} {r.ordered(items)} ")"'))
    if not actions:
        raise ValueError("no action left: no tools and allow_finish=False")
    head = f'"Thought: " [^\\n\\r]{{0,{max_thought_chars}}} "\\nAction: "'
    body = "\n".join(f"{name} ::= {rule}" for name, rule in r.rules.items())
    return f"root ::= {head} ({' | '.join(actions)})\n{body}\n"


# -- parsing ----------------------------------------------------------------------------------------------------
_ACTION = re.compile(r"^\s*Action\s*:\s*(.*)$", re.MULTILINE)
_THOUGHT = re.compile(r"Thought\s*:\s*", re.IGNORECASE)
_FINISH = re.compile(rf"^{FINISH}\s*(?:\((.*)\)|\[(.*)\])\s*$", re.DOTALL | re.IGNORECASE)
_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)


def _literal(node: ast.AST, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ReActFormatError(f"{what}: not a literal ({ast.unparse(node)[:60]})") from None


def _answer(inner: str) -> str:
    inner = inner.strip()
    try:
        value = ast.literal_eval(inner)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return inner
    return value if isinstance(value, str) else str(value)


def parse_args(spec: ToolSpec, inner: str) -> dict[str, Any]:
    """The arguments of ``spec.name(<inner>)``: keyword (and positional, in the schema's property order)
    Python literals, or one JSON object."""
    inner = inner.strip()
    if not inner:
        return {}
    if inner.startswith("{"):
        try:
            value = json.loads(inner)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    try:
        tree = ast.parse(f"_({inner})", mode="eval")
    except SyntaxError:
        raise ReActFormatError(f"{spec.name}: cannot parse the arguments ({inner[:80]})") from None
    call = tree.body
    if not isinstance(call, ast.Call) or any(k.arg is None for k in call.keywords):
        raise ReActFormatError(f"{spec.name}: arguments must be literals, keyword=literal")
    if any(isinstance(a, ast.Starred) for a in call.args):
        raise ReActFormatError(f"{spec.name}: no *args")
    params = spec.params
    if len(call.args) > len(params):
        raise ReActFormatError(f"{spec.name}: takes at most {len(params)} arguments ({', '.join(params)})")
    if len(call.args) == 1 and isinstance(call.args[0], ast.Dict) and not call.keywords and len(params) != 1:
        value = _literal(call.args[0], spec.name)
        return {str(k): v for k, v in value.items()}
    args = {params[i]: _literal(a, f"{spec.name} argument {params[i]}") for i, a in enumerate(call.args)}
    for kw in call.keywords:
        assert kw.arg is not None
        if kw.arg in args:
            raise ReActFormatError(f"{spec.name}: argument {kw.arg!r} given twice")
        args[kw.arg] = _literal(kw.value, f"{spec.name} argument {kw.arg}")
    return args


def parse_turn(text: str, tools: Iterable[ToolSpec]) -> Turn:
    """The thought and the action of one turn (the first ``Action:`` line); ``ReActFormatError`` when
    there is no action, it names an unknown tool, or its arguments are not literals."""
    specs = {s.name: s for s in tools}
    m = _ACTION.search(text)
    if m is None:
        raise ReActFormatError(
            "no 'Action:' line; write 'Action: tool(arg=value)' or 'Action: Finish(answer)'"
        )
    thought = _THOUGHT.sub("", text[: m.start()], count=1).strip()
    action = m.group(1).strip()
    f = _FINISH.match(action)
    if f is not None:
        return Turn(thought, answer=_answer(f.group(1) if f.group(1) is not None else f.group(2)))
    c = _CALL.match(action)
    if c is None:
        raise ReActFormatError(
            f"cannot read the action {action[:80]!r}; write tool(arg=value) or Finish(answer)"
        )
    name = c.group(1)
    if name not in specs:
        raise ReActFormatError(f"unknown tool {name!r} (tools: {', '.join(specs)}, {FINISH})")
    return Turn(thought, tool=name, args=parse_args(specs[name], c.group(2)))
