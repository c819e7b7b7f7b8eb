"""OpenAI-shaped tools: validation (``normalize_tools``), ``tool_choice`` and the grammar that forces a call.

Torch-free at import; ``tool_choice_constraint`` imports xgrammar (which imports torch) only when it builds a
grammar.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.runtime.engine.errors import InvalidRequestError

if TYPE_CHECKING:
    from tether.runtime.engine.structured.params import StructuredOutputs

TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""OpenAI's rule for function names: letters, digits, ``_`` and ``-``, at most 64 characters."""

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    """One function the model may call. ``parameters`` is the JSON schema of its arguments object
    (``{"type": "object", "properties": {}}`` when the request gave none, as OpenAI reads a missing one)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(EMPTY_PARAMETERS), hash=False)

    def to_openai(self) -> dict[str, Any]:
        """``{"type": "function", "function": {"name", "description"?, "parameters"}}``."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


def normalize_tools(tools: Sequence[Mapping[str, Any] | Tool] | None) -> tuple[Tool, ...]:
    """Validate ``tools`` (OpenAI tool dicts, bare function dicts or ``Tool``s) into ``Tool``s, in order.

    Raises ``InvalidRequestError`` naming the field at fault, e.g. ``tools[1].function.name``: a missing,
    malformed or duplicate name, a description that is not a string, parameters that are not an object schema.
    """
    if tools is None:
        return ()
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise InvalidRequestError(None, "tools", f"expected a list of tools, got {type(tools).__name__}")
    out: list[Tool] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        parsed = tool if isinstance(tool, Tool) else _parse_tool(tool, f"tools[{i}]")
        if parsed.name in seen:
            raise InvalidRequestError(
                None, f"tools[{i}].function.name", f"duplicate tool name {parsed.name!r}"
            )
        seen.add(parsed.name)
        out.append(parsed)
    return tuple(out)


def _parse_tool(tool: Any, where: str) -> Tool:
    if not isinstance(tool, Mapping):
        raise InvalidRequestError(None, where, f"expected a tool object, got {type(tool).__name__}")
    if "function" in tool or "type" in tool:
        if tool.get("type", "function") != "function":
            raise InvalidRequestError(
                None, f"{where}.type", f"only 'function' tools exist, got {tool['type']!r}"
            )
        function, where = tool.get("function"), f"{where}.function"
        if not isinstance(function, Mapping):
            raise InvalidRequestError(None, where, "expected a function object with a name")
    else:
        function = tool  # the bare function dict
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME_RE.fullmatch(name):
        raise InvalidRequestError(
            None, f"{where}.name", f"must be 1-64 letters, digits, '_' or '-', got {name!r}"
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequestError(None, f"{where}.description", "must be a string")
    parameters = function.get("parameters")
    if parameters is None:
        parameters = EMPTY_PARAMETERS
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise InvalidRequestError(
            None, f"{where}.parameters", "must be a JSON schema of an object (type 'object')"
        )
    try:
        dumps_json(parameters)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(None, f"{where}.parameters", f"is not JSON: {exc}") from None
    return Tool(name=name, description=description, parameters=copy.deepcopy(dict(parameters)))


def loads_json(text: str) -> Any:
    """``json.loads`` that accepts only standard JSON: ``NaN`` / ``Infinity`` and numbers beyond a double's range
    (which would re-serialise as ``Infinity``) raise ``ValueError`` (``json.JSONDecodeError`` for bad syntax)."""
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def dumps_json(value: Any) -> str:
    """The canonical text of JSON in the chat format: ``json.dumps`` default separators, ``ensure_ascii=False``;
    ``ValueError`` / ``TypeError`` for what JSON cannot hold."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def resolve_tool_choice(
    tools: Sequence[Tool], tool_choice: str | Mapping[str, Any] | None
) -> tuple[Tool, ...]:
    """The tools the output is forced to call one of: ``()`` for ``None``, ``"none"`` and ``"auto"`` (no
    constraint), all of ``tools`` for ``"required"``, the named one for ``{"type": "function", "function":
    {"name": X}}``. ``tools`` must already be normalised. Raises ``InvalidRequestError`` naming ``tool_choice``
    for another value, an unknown name, or a forced choice without tools."""
    if tool_choice is None or tool_choice in ("none", "auto"):
        return ()
    if tool_choice == "required":
        if not tools:
            raise InvalidRequestError(None, "tool_choice", "'required' needs at least one tool in 'tools'")
        return tuple(tools)
    named = isinstance(tool_choice, Mapping) and tool_choice.get("type", "function") == "function"
    function = tool_choice.get("function") if named else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            None,
            "tool_choice",
            "expected 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}, "
            f"got {tool_choice!r}",
        )
    name = function["name"]
    for tool in tools:
        if tool.name == name:
            return (tool,)
    known = ", ".join(t.name for t in tools) or "none given"
    raise InvalidRequestError(None, "tool_choice", f"no tool named {name!r} in 'tools' ({known})")


def tool_choice_constraint(
    tools: Sequence[Mapping[str, Any] | Tool] | None, tool_choice: str | Mapping[str, Any] | None
) -> StructuredOutputs | None:
    """``None`` when ``tool_choice`` forces nothing (``None``, ``"none"``, ``"auto"``); else
    ``StructuredOutputs(grammar=EBNF)`` whose language is exactly one call of a forced tool X::

        <tool_call>\\n{"name": "X", "arguments": <JSON valid against X's parameters>}\\n</tool_call>

    with ``json.dumps``'s default separators (``", "``, ``": "``), no other whitespace, ``name`` before
    ``arguments`` and the arguments' properties in their schema order, so ``parse_tool_calls`` reads it back.
    Raises ``InvalidRequestError`` naming ``tools[...]`` / ``tool_choice`` for bad input, and
    ``tools[i].function.parameters`` for a schema xgrammar cannot compile."""
    from tether.runtime.engine.structured.params import StructuredOutputs

    normalized = normalize_tools(tools)
    forced = resolve_tool_choice(normalized, tool_choice)
    if not forced:
        return None
    key = dumps_json(
        [{"name": t.name, "parameters": t.parameters} for t in forced]
    )  # not sorted: order matters
    try:
        grammar = _tool_call_grammar(key)
    except _SchemaError as exc:
        index = next(i for i, t in enumerate(normalized) if t.name == exc.tool)
        raise InvalidRequestError(
            None, f"tools[{index}].function.parameters", f"cannot build a grammar: {exc.reason}"
        ) from None
    return StructuredOutputs(grammar=grammar)


ARGUMENTS_POINTER = "#/properties/arguments"


def call_object_schema(tool: Tool) -> dict[str, Any]:
    """The JSON schema of one call object: ``{"name": <const tool.name>, "arguments": <tool.parameters>}``.
    Local ``$ref``s of the parameters (``#/$defs/Point``, as pydantic writes them) are rebased under
    ``#/properties/arguments`` so they still resolve."""
    arguments = _rebase_refs(tool.parameters)
    arguments.setdefault("type", "object")  # the arguments are an object whatever the schema leaves open
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": arguments},
        "required": ["name", "arguments"],
    }


def _rebase_refs(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {
            key: ARGUMENTS_POINTER + value[1:]
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _rebase_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase_refs(value) for value in node]
    return node


class _SchemaError(Exception):
    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(tool, reason)
        self.tool, self.reason = tool, reason


@functools.lru_cache(maxsize=256)
def _tool_call_grammar(functions_json: str) -> str:
    """EBNF text (xgrammar's dialect, root ``root``) of one ``<tool_call>`` block calling one of the functions
    (their ``to_openai()["function"]`` dicts, as JSON). Cached: agents force the same tools turn after turn."""
    from xgrammar import Grammar

    tools = [Tool(f["name"], parameters=f["parameters"]) for f in json.loads(functions_json)]
    calls = []
    for tool in tools:
        try:
            calls.append(
                Grammar.from_json_schema(
                    call_object_schema(tool), any_whitespace=False, separators=(", ", ": ")
                )
            )
        except RuntimeError as exc:  # xgrammar reports unsupported or malformed schemas as RuntimeError
            raise _SchemaError(tool.name, str(exc).strip().splitlines()[-1]) from None
    body = calls[0] if len(calls) == 1 else Grammar.union(*calls)
    opening = Grammar.from_ebnf('root ::= "<tool_call>\\n"')
    closing = Grammar.from_ebnf('root ::= "\\n</tool_call>"')
    return str(Grammar.concat(opening, body, closing))
