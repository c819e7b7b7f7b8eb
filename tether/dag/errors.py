"""Typed errors of the DAG compiler. Each names the node (and the file and line when the program came from a
workflow YAML) and says what is wrong."""

from __future__ import annotations

from pathlib import Path


class DagError(Exception):
    """Base class of every error ``dag`` raises. ``node`` is the node at fault (``None`` when the error is
    about the program as a whole); ``path`` and ``line`` locate it in a workflow file when known."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        path: str | Path | None = None,
        line: int | None = None,
    ):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")
        self.reason = message
        self.node = node
        self.path = None if path is None else Path(path)
        self.line = line


class WorkflowSyntaxError(DagError):
    """The workflow file is not valid YAML, or does not follow the workflow schema (``docs/workflow-yaml.md``)."""


class DuplicateNodeError(DagError):
    """Two nodes share an id."""

    def __init__(self, node: str, *, path: str | Path | None = None, line: int | None = None):
        super().__init__(f"duplicate node id {node!r}", node=node, path=path, line=line)


class CycleError(DagError):
    """The dependencies form a cycle; ``cycle`` lists its nodes in order (the first follows the last)."""

    def __init__(self, cycle: tuple[str, ...], *, path: str | Path | None = None, line: int | None = None):
        text = " -> ".join((*cycle, cycle[0]))
        super().__init__(f"dependency cycle: {text}", node=cycle[0], path=path, line=line)
        self.cycle = cycle


class UnknownReferenceError(DagError):
    """A reference names a node or input that does not exist, or a field its source's schema lacks."""

    def __init__(
        self,
        node: str | None,
        ref: str,
        reason: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
    ):
        owner = f"node {node!r}" if node is not None else "outputs"
        super().__init__(f"{owner}: reference {ref}: {reason}", node=node, path=path, line=line)
        self.ref = ref


class ReferenceSyntaxError(DagError):
    """A ``${...}`` is malformed."""


class ToolNotFoundError(DagError):
    """A node calls (or an LLM call offers) a tool that is not registered."""

    def __init__(
        self,
        node: str,
        tool: str,
        known: list[str],
        *,
        path: str | Path | None = None,
        line: int | None = None,
    ):
        hint = f" (registered: {', '.join(known)})" if known else " (no tools are registered)"
        super().__init__(f"node {node!r}: unknown tool {tool!r}{hint}", node=node, path=path, line=line)
        self.tool = tool


class ToolArgumentsError(DagError):
    """A tool call's arguments fail the tool's schema (checked before anything runs)."""

    def __init__(
        self,
        node: str,
        tool: str,
        field: str | None,
        reason: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
    ):
        what = f"argument {field!r}" if field else "arguments"
        super().__init__(
            f"node {node!r}: tool {tool!r}: {what}: {reason}",
            node=node,
            path=path,
            line=line,
        )
        self.tool = tool
        self.field = field


class OutputSchemaError(DagError):
    """An LLM call's ``output`` schema is not a JSON schema this compiler can turn into a model."""


class InputError(DagError):
    """A program input is missing, unknown, or of the wrong type; ``input`` names it."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"input {name!r}: {reason}")
        self.input = name
