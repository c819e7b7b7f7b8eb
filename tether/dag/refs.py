"""References between nodes: ``${inputs.x}``, ``${node.output}``, ``${node.output.field}``, ``${node.output[0]}``.

A string that is exactly one reference binds the typed value (a JSON value or a pydantic model, never its
string form); a reference inside longer text is spliced in as text (strings as they are, anything else as
JSON). ``$${`` writes a literal ``${``. Templates are compiled once per node and rendered per run.

    "${search.output[0].url}"      -> Ref(source="node", name="search", path=(0, "url"))  typed value
    "Summarize ${search.output}"   -> "Summarize [{\"url\": ...}]"                        text
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import pydantic_core

IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
NODE_ID = re.compile(rf"^{IDENT}$")
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_HEAD = re.compile(rf"^\s*({IDENT})\.({IDENT})")
_STEP = re.compile(rf"\.({IDENT})|\[\s*(-?\d+)\s*\]")

PathItem = str | int


class RefSyntaxError(ValueError):
    """A ``${...}`` that is not ``inputs.NAME...`` or ``NODE.output...``."""


class RefResolutionError(LookupError):
    """A reference's path does not exist in the value it was bound to (a missing field, an index too far)."""


@dataclass(frozen=True)
class Ref:
    """One reference. ``source`` is ``"inputs"`` (``name`` is the input) or ``"node"`` (``name`` is the node
    id); ``path`` walks into the value: field names and list indexes."""

    source: Literal["inputs", "node"]
    name: str
    path: tuple[PathItem, ...] = ()

    @property
    def text(self) -> str:
        head = f"inputs.{self.name}" if self.source == "inputs" else f"{self.name}.output"
        tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return "${" + head + tail + "}"

    def __str__(self) -> str:
        return self.text


def node_ref(node_id: str, path: Sequence[PathItem] = ()) -> str:
    """The template string naming a node's value (``node_ref("search", (0, "url"))`` ->
    ``"${search.output[0].url}"``): a node that holds it in its args, messages or prompt gets a data edge
    from ``node_id``. Alone as a value it binds the typed value; inside longer text it is spliced in."""
    if not isinstance(node_id, str) or not NODE_ID.match(node_id) or node_id == "inputs":
        raise RefSyntaxError(f"node id {node_id!r} must match [A-Za-z_][A-Za-z0-9_-]* and not be 'inputs'")
    for step in path:
        if isinstance(step, bool) or not isinstance(step, (str, int)):
            raise RefSyntaxError(f"{node_id}: path step {step!r} is neither a field name nor an index")
        if isinstance(step, str) and not re.fullmatch(IDENT, step):
            raise RefSyntaxError(f"{node_id}: path field {step!r} must match {IDENT}")
    return Ref("node", node_id, tuple(path)).text


def parse_ref(body: str) -> Ref:
    """The reference inside ``${...}`` (``body`` without the braces); ``RefSyntaxError`` if malformed."""
    m = _HEAD.match(body)
    if m is None:
        raise RefSyntaxError(f"${{{body}}}: expected ${{inputs.NAME}} or ${{NODE.output}}")
    head, second = m.group(1), m.group(2)
    if head == "inputs":
        source: Literal["inputs", "node"] = "inputs"
        name = second
    elif second == "output":
        source, name = "node", head
    else:
        raise RefSyntaxError(f"${{{body}}}: a node's value is ${{{head}.output}}, not ${{{head}.{second}}}")
    path: list[PathItem] = []
    pos = m.end()
    rest = body.rstrip()
    while pos < len(rest):
        step = _STEP.match(rest, pos)
        if step is None:
            raise RefSyntaxError(f"${{{body}}}: cannot parse {rest[pos:]!r} (use .field or [index])")
        path.append(step.group(1) if step.group(1) is not None else int(step.group(2)))
        pos = step.end()
    return Ref(source, name, tuple(path))


# -- templates ---------------------------------------------------------------------------------------------
class Template:
    """A value (str, list, dict, or a constant) with references, compiled once. ``refs`` lists them in order;
    ``render(lookup)`` builds the value, with ``lookup(ref)`` giving the bound value of each reference."""

    refs: tuple[Ref, ...] = ()

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        raise NotImplementedError


class _Const(Template):
    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        return self.value


class _Whole(Template):
    def __init__(self, ref: Ref) -> None:
        self.ref = ref
        self.refs = (ref,)

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        return lookup(self.ref)


class _Splice(Template):
    def __init__(self, parts: list[str | Ref]) -> None:
        self.parts = parts
        self.refs = tuple(p for p in parts if isinstance(p, Ref))

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        return "".join(p if isinstance(p, str) else as_text(lookup(p)) for p in self.parts)


class _List(Template):
    def __init__(self, items: list[Template]) -> None:
        self.items = items
        self.refs = tuple(r for t in items for r in t.refs)

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        return [t.render(lookup) for t in self.items]


class _Dict(Template):
    def __init__(self, items: dict[str, Template]) -> None:
        self.items = items
        self.refs = tuple(r for t in items.values() for r in t.refs)

    def render(self, lookup: Callable[[Ref], Any]) -> Any:
        return {k: t.render(lookup) for k, t in self.items.items()}


def compile_template(value: Any) -> Template:
    """Compile ``value`` (strings, lists, tuples and dicts are searched for references); ``RefSyntaxError``."""
    if isinstance(value, str):
        return _compile_str(value)
    if isinstance(value, (list, tuple)):
        items = [compile_template(v) for v in value]
        return _List(items) if any(t.refs for t in items) else _Const([_constant(t) for t in items])
    if isinstance(value, Mapping):
        mapped = {str(k): compile_template(v) for k, v in value.items()}
        if any(t.refs for t in mapped.values()):
            return _Dict(mapped)
        return _Const({k: _constant(t) for k, t in mapped.items()})
    return _Const(value)


def _constant(template: Template) -> Any:
    """The value of a template without references (escapes such as ``$${`` already undone)."""
    return template.render(_no_refs)


def _no_refs(ref: Ref) -> Any:
    raise AssertionError(f"a constant template looked up {ref.text!r}")


def _compile_str(text: str) -> Template:
    if "${" not in text:
        return _Const(text)
    parts: list[str | Ref] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        parts.append(_literal(text[pos : m.start()]))
        parts.append("${" if m.group(1) is None else parse_ref(m.group(1)))
        pos = m.end()
    parts.append(_literal(text[pos:]))
    merged: list[str | Ref] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif p != "":
            merged.append(p)
    if len(merged) == 1 and isinstance(merged[0], Ref):
        return _Whole(merged[0])
    if not any(isinstance(p, Ref) for p in merged):
        return _Const("".join(p for p in merged if isinstance(p, str)))
    return _Splice(merged)


def _literal(text: str) -> str:
    if "${" in text:
        raise RefSyntaxError(f"unterminated reference in {text!r} (write $${{ for a literal ${{)")
    return text


def find_refs(value: Any) -> tuple[Ref, ...]:
    """Every reference in ``value``, in order (duplicates kept)."""
    return compile_template(value).refs


def static_prefix(text: str) -> str:
    """The text before the first reference (``$${`` unescaped): what every rendering of ``text`` starts with."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.start()])
        if m.group(1) is not None:
            return "".join(out)
        out.append("${")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# -- values ------------------------------------------------------------------------------------------------
def as_text(value: Any) -> str:
    """How a value is spliced into text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return pydantic_core.to_json(value).decode()


def walk(value: Any, path: Sequence[PathItem]) -> Any:
    """Follow ``path`` into ``value``: keys of mappings, fields of pydantic models and objects, indexes of
    lists. ``RefResolutionError`` names the first step that does not exist."""
    for i, step in enumerate(path):
        value = _step(value, step, path[:i])
    return value


def _step(value: Any, step: PathItem, before: Sequence[PathItem]) -> Any:
    at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in before) or "the value"
    if isinstance(step, int):
        if isinstance(value, (list, tuple)):
            if -len(value) <= step < len(value):
                return value[step]
            raise RefResolutionError(f"index [{step}] is out of range: {at} has {len(value)} items")
        raise RefResolutionError(f"[{step}]: {at} is a {type(value).__name__}, not a list")
    if isinstance(value, Mapping):
        if step in value:
            return value[step]
        raise RefResolutionError(f".{step}: {at} has no key {step!r} (keys: {', '.join(map(str, value))})")
    if isinstance(value, pydantic.BaseModel):
        if step in type(value).model_fields:
            return getattr(value, step)
        raise RefResolutionError(f".{step}: {at} ({type(value).__name__}) has no field {step!r}")
    if not step.startswith("_") and hasattr(value, step) and not isinstance(value, (str, bytes, list, tuple)):
        return getattr(value, step)
    raise RefResolutionError(f".{step}: {at} is a {type(value).__name__} without a field {step!r}")
