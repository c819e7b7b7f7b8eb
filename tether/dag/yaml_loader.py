"""Workflow YAML -> ``Program`` (schema: ``docs/workflow-yaml.md``). Every error names the file and line.

The file is composed once to a YAML node tree (for line numbers and duplicate keys) and then validated
part by part with the IR's pydantic models, so a validation error's location maps back to its line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import yaml

from tether.dag.errors import WorkflowSyntaxError
from tether.dag.ir import InputSpec, LLMCall, Program, SourceMap, ToolCall
from tether.dag.refs import NODE_ID

Loc = tuple[str | int, ...]
TOP_KEYS = {"name", "description", "inputs", "tools", "nodes", "outputs"}
NODE_KEYS = {"id", "tool", "args", "retry", "timeout", "depends", "llm"}


class WorkflowLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false (YAML 1.1 also reads on/off/yes/no as booleans, so ``on:`` in a
    retry policy would become the key ``True``)."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_workflow(path: str | Path) -> Program:
    """Read and check a workflow file; ``WorkflowSyntaxError`` (with the line) when it is malformed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkflowSyntaxError(f"cannot read the workflow: {exc.strerror}", path=path) from None
    except UnicodeDecodeError as exc:
        raise WorkflowSyntaxError(
            f"the workflow is not UTF-8 text: {exc.reason} at byte {exc.start}", path=path
        ) from None
    return parse_workflow(text, path=path)


def parse_workflow(text: str, *, path: str | Path | None = None) -> Program:
    """Like ``load_workflow`` for text; ``path`` only labels errors and sets where tool files are found."""
    src = Path(path) if path is not None else Path("<workflow>")
    try:
        root = yaml.compose(text, Loader=WorkflowLoader)
        data = yaml.load(text, Loader=WorkflowLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise WorkflowSyntaxError(
            f"invalid YAML: {exc.problem or exc.context}", path=src, line=line
        ) from None
    except yaml.YAMLError as exc:
        raise WorkflowSyntaxError(f"invalid YAML: {exc}", path=src) from None
    lines: dict[Loc, int] = {}
    if root is not None:
        _index(root, (), lines, src, set(), set())
    return _Builder(src, lines, src.stem if path is not None else "workflow").program(data)


def _index(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], src: Path, active: set[int], done: set[int]
) -> None:
    """Record the line of every key and item; reject duplicate keys (YAML would keep the last silently) and
    aliases that contain themselves. An alias's node is walked once (``done``): nested aliases stay linear."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if id(node) in active:
        raise WorkflowSyntaxError("a YAML alias refers to itself", path=src, line=node.start_mark.line + 1)
    if id(node) in done:
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value
            line = key.start_mark.line + 1
            if name in seen:
                raise WorkflowSyntaxError(
                    f"duplicate key {name!r} (first on line {seen[name]})", path=src, line=line
                )
            seen[name] = line
            lines[(*loc, name)] = line
            _index(value, (*loc, name), lines, src, active, done)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, src, active, done)
    active.discard(id(node))
    done.add(id(node))


class _Builder:
    def __init__(self, src: Path, lines: dict[Loc, int], default_name: str) -> None:
        self.src = src
        self.lines = lines
        self.default_name = default_name

    def line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def fail(self, loc: Loc, message: str) -> WorkflowSyntaxError:
        return WorkflowSyntaxError(message, path=self.src, line=self.line(loc))

    def program(self, data: Any) -> Program:
        if not isinstance(data, dict):
            raise self.fail((), "a workflow is a mapping with 'name', 'inputs', 'tools', 'nodes', 'outputs'")
        for key in data:
            if key not in TOP_KEYS:
                raise self.fail(
                    (key,), f"unknown top-level key {key!r} (expected: {', '.join(sorted(TOP_KEYS))})"
                )
        name = data.get("name", self.default_name)
        if not isinstance(name, str) or not name:
            raise self.fail(("name",), "'name' must be a non-empty string")
        inputs = {k: self.input(k, v) for k, v in self._mapping(data, "inputs").items()}
        tools = data.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise self.fail(("tools",), "'tools' is a list of module names or .py paths")
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise self.fail(("nodes",), "'nodes' must be a non-empty list")
        nodes = [self.node(i, raw) for i, raw in enumerate(raw_nodes)]
        outputs = self._mapping(data, "outputs")
        seen: dict[str, int] = {}
        for i, node in enumerate(nodes):
            if node.id in seen:
                first = self.line(("nodes", seen[node.id]))
                raise WorkflowSyntaxError(
                    f"duplicate node id {node.id!r} (first on line {first})",
                    node=node.id,
                    path=self.src,
                    line=self.line(("nodes", i, "id")),
                )
            seen[node.id] = i
        source = SourceMap(
            path=self.src,
            nodes={n.id: self.line(("nodes", i)) or 0 for i, n in enumerate(nodes)},
            outputs={k: self.line(("outputs", k)) or 0 for k in outputs},
        )
        return Program(name, inputs=inputs, nodes=nodes, outputs=outputs, tools=tools, source=source)

    def _mapping(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail((key,), f"'{key}' must be a mapping")
        return value

    def input(self, name: str, raw: Any) -> InputSpec:
        loc: Loc = ("inputs", name)
        if not isinstance(name, str) or not NODE_ID.match(name):
            raise self.fail(loc, f"input name {name!r} must match [A-Za-z_][A-Za-z0-9_-]*")
        spec = {"type": raw} if isinstance(raw, str) else raw
        if not isinstance(spec, dict):
            raise self.fail(loc, f"input {name!r}: give a type name or a mapping with 'type' and 'default'")
        try:
            return InputSpec.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise self._validation(exc, loc, f"input {name!r}", {}) from None

    def node(self, i: int, raw: Any) -> LLMCall | ToolCall:
        loc: Loc = ("nodes", i)
        if not isinstance(raw, dict):
            raise self.fail(loc, f"node #{i + 1}: a node is a mapping with 'id' and 'tool' or 'llm'")
        label = f"node {raw['id']!r}" if isinstance(raw.get("id"), str) else f"node #{i + 1}"
        for key in raw:
            if key not in NODE_KEYS:
                raise self.fail(
                    (*loc, key), f"{label}: unknown key {key!r} (expected: {', '.join(sorted(NODE_KEYS))})"
                )
        if ("tool" in raw) == ("llm" in raw):
            raise self.fail(loc, f"{label}: a node has either 'tool' (with 'args') or 'llm'")
        common = {k: raw[k] for k in ("id", "depends", "timeout") if k in raw}
        if "tool" in raw:
            fields = {**common, **{k: raw[k] for k in ("tool", "args", "retry") if k in raw}}
            model: type[LLMCall] | type[ToolCall] = ToolCall
            nested: dict[str, Loc] = {}
        else:
            if "args" in raw or "retry" in raw:
                key = "args" if "args" in raw else "retry"
                raise self.fail((*loc, key), f"{label}: '{key}' belongs to tool nodes")
            llm = raw["llm"]
            if not isinstance(llm, dict):
                raise self.fail(
                    (*loc, "llm"), f"{label}: 'llm' is a mapping (messages or prompt, max_tokens, ...)"
                )
            fields = {**common, **llm}
            model = LLMCall
            nested = {k: (*loc, "llm", k) for k in llm}
        try:
            return model.model_validate(fields)
        except pydantic.ValidationError as exc:
            raise self._validation(exc, loc, label, nested) from None

    def _validation(
        self, exc: pydantic.ValidationError, loc: Loc, label: str, nested: dict[str, Loc]
    ) -> WorkflowSyntaxError:
        err = exc.errors(include_url=False)[0]
        where = tuple(err["loc"])
        head = where[0] if where else None
        full = (*nested[head], *where[1:]) if head in nested else (*loc, *where)
        field = ".".join(str(p) for p in where) if where else ""
        msg = err["msg"].removeprefix("Value error, ")
        node = label.split("'")[1] if label.startswith("node '") else None
        return WorkflowSyntaxError(
            f"{label}: {field + ': ' if field else ''}{msg}", node=node, path=self.src, line=self.line(full)
        )
