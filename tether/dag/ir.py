"""The IR: ``LLMCall`` and ``ToolCall`` nodes (pydantic) in a ``Program`` (a networkx ``DiGraph``).

Edges run from a node to the nodes that need it: ``kind="data"`` when the later node references the earlier
one's output (``${a.output}``), ``kind="order"`` for ``depends: [a]`` alone. A program may grow while it runs
(``add_node``; a ReAct loop appends a turn after each answer): nodes may name nodes added later, and the
compiler reports references that are still unknown when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.dag.errors import DuplicateNodeError, ReferenceSyntaxError
from tether.dag.refs import NODE_ID, Ref, RefSyntaxError, Template, compile_template

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class FunctionCall(BaseModel):
    """The function half of an assistant tool call: ``arguments`` is a JSON object as text (OpenAI's shape)."""

    model_config = _FROZEN
    name: str = Field(min_length=1)
    arguments: str = "{}"

    @field_validator("arguments")
    @classmethod
    def _check_arguments(cls, value: str) -> str:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments are not JSON: {exc.msg}") from None
        if not isinstance(decoded, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(decoded).__name__}")
        return value


class MessageToolCall(BaseModel):
    """One tool call of an assistant message: ``{"id", "type": "function", "function": {"name", "arguments"}}``."""

    model_config = _FROZEN
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    """One chat message. ``content`` is a template (references allowed). An assistant message may carry
    ``tool_calls`` (OpenAI's shape, static: no references in them); a ``tool`` message is the result of the
    call ``tool_call_id`` names. ``to_openai(content)`` is the OpenAI-shaped dict a backend receives."""

    model_config = _FROZEN
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[MessageToolCall, ...] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _check_tool_fields(self) -> Message:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError(f"tool_calls: only an assistant message has them, not a {self.role!r} one")
        if self.tool_calls is not None and not self.tool_calls:
            raise ValueError("tool_calls: empty (omit the field instead)")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool_call_id: a tool message names the call it answers")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError(f"tool_call_id: only a tool message has one, not a {self.role!r} one")
        return self

    def to_openai(self, content: str) -> dict[str, Any]:
        """The message with its rendered ``content``: ``None`` content for an assistant message made only of
        tool calls, ``tool_calls`` / ``tool_call_id`` only when set."""
        out: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls is not None:
            out["content"] = content or None
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class RetryPolicy(BaseModel):
    """Tool and LLM-call retries: up to ``attempts`` tries in all; before try ``k + 1`` wait
    ``backoff_s * backoff_factor**(k-1)``; retried only for the failures listed in ``on`` (a timeout, or an
    error raised by the tool). Argument errors and unknown tools are never retried. For an LLM call "error"
    is a backend error or a reply that does not parse into its ``output`` schema (``LLMOutputError``)."""

    model_config = _FROZEN
    attempts: int = Field(1, ge=1)
    backoff_s: float = Field(0.0, ge=0.0)
    backoff_factor: float = Field(2.0, ge=1.0)
    on: tuple[Literal["timeout", "error"], ...] = ("timeout", "error")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (1-based; the first attempt waits 0)."""
        return 0.0 if attempt <= 1 else self.backoff_s * self.backoff_factor ** (attempt - 2)


class _NodeBase(BaseModel):
    model_config = _FROZEN
    id: str
    depends: tuple[str, ...] = ()
    timeout: float | None = Field(None, gt=0.0, description="seconds per attempt")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not NODE_ID.match(value) or value == "inputs":
            raise ValueError(f"node id {value!r} must match [A-Za-z_][A-Za-z0-9_-]* and not be 'inputs'")
        return value


class ToolCall(_NodeBase):
    """Call ``tool`` with ``args`` (values may hold references).

    ``on_error``: ``"fail"`` (default) fails the program when the call fails (after its retries);
    ``"value"`` makes the failure the node's value instead, a ``ToolFailure`` its dependents and awaiters
    receive, so an agent can show the error to its model and go on (the program keeps running)."""

    kind: Literal["tool"] = "tool"
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    on_error: Literal["fail", "value"] = "fail"


class ToolFailure(BaseModel):
    """The value of a ``ToolCall(on_error="value")`` whose call failed: which tool, the error's type and
    message (what the tool raised, or the argument / timeout error), and how many attempts were made."""

    model_config = _FROZEN
    tool: str
    error_type: str
    message: str
    attempts: int = 1

    def __str__(self) -> str:
        return f"error from {self.tool}: {self.error_type}: {self.message}"


class LLMCall(_NodeBase):
    """One LLM turn: chat ``messages`` or a raw ``prompt`` (templates), sampling, the tools it is offered,
    and an optional ``output`` JSON schema its text is parsed into. ``tool_choice`` (OpenAI's: ``"auto"``,
    ``"required"``, ``{"type": "function", "function": {"name": X}}``) and ``grammar`` (EBNF, xgrammar's
    dialect, root rule ``root``) constrain the reply; ``retry`` retries failed attempts."""

    kind: Literal["llm"] = "llm"
    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    tools: tuple[str, ...] = ()
    output: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    grammar: str | None = None
    retry: RetryPolicy = RetryPolicy()

    @model_validator(mode="after")
    def _one_input(self) -> LLMCall:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("an llm node needs exactly one of 'messages' or 'prompt'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' is empty")
        if self.tool_choice not in (None, "none", "auto") and not self.tools:
            raise ValueError(f"tool_choice {self.tool_choice!r} needs 'tools'")
        if self.grammar is not None and self.tool_choice not in (None, "none", "auto"):
            raise ValueError("'grammar' and a forcing 'tool_choice' are two constraints; give one")
        if self.grammar is not None and not self.grammar.strip():
            raise ValueError("'grammar' is empty")
        return self


Node = Annotated[LLMCall | ToolCall, Field(discriminator="kind")]

InputType = Literal["string", "integer", "number", "boolean", "object", "array"]


class InputSpec(BaseModel):
    """A program input; required unless it has a ``default``."""

    model_config = _FROZEN
    type: InputType = "string"
    default: Any = None
    description: str = ""

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set


@dataclass(frozen=True)
class SourceMap:
    """Where a program's parts are in its workflow file: 1-based lines of each node and output."""

    path: Path | None = None
    nodes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)

    def where(self, node: str | None = None, output: str | None = None) -> dict[str, Any]:
        line = self.nodes.get(node) if node is not None else self.outputs.get(output or "")
        return {"path": self.path, "line": line}


class Program:
    """A graph of nodes with named ``inputs`` and ``outputs`` (templates over node outputs).

    ``graph`` has one vertex per node id (attribute ``node``; a vertex without it is a name referenced but
    not yet added) and edges ``dep -> node`` with ``kind`` ``"data"``, ``"order"`` or ``"stream"`` (``node`` was
    dispatched by the LLM call ``dep`` while its reply streamed, a planner's task: it comes after ``dep`` in the
    graph but does not wait for it to end). ``may_grow`` says the program may still grow, so no turn can be
    known to be the last.
    """

    def __init__(
        self,
        name: str = "program",
        *,
        inputs: Mapping[str, InputSpec] | None = None,
        nodes: Iterable[LLMCall | ToolCall] = (),
        outputs: Mapping[str, Any] | None = None,
        tools: Iterable[str] = (),
        may_grow: bool = False,
        source: SourceMap | None = None,
    ) -> None:
        self.name = name
        self.inputs: dict[str, InputSpec] = dict(inputs or {})
        self.tools = tuple(tools)
        self.may_grow = may_grow
        self.source = source or SourceMap()
        self.graph = nx.DiGraph()
        self.nodes: dict[str, LLMCall | ToolCall] = {}
        self.templates: dict[str, dict[str, Template]] = {}  # node id -> part name -> template
        self.outputs: dict[str, Any] = dict(outputs or {})
        self.output_templates: dict[str, Template] = {
            k: self._compile(v, None, f"output {k!r}") for k, v in self.outputs.items()
        }
        for node in nodes:
            self.add_node(node)

    def add_node(self, node: LLMCall | ToolCall, *, streamed_from: str | None = None) -> None:
        """Add ``node`` and its edges (``streamed_from``: a ``"stream"`` edge from that node, first among its
        predecessors, unless it is also a dependency). ``DuplicateNodeError``; ``ReferenceSyntaxError`` for a
        bad ``${...}``."""
        if node.id in self.nodes:
            raise DuplicateNodeError(node.id, **self.source.where(node.id))
        templates = self._node_templates(node)
        self.nodes[node.id] = node
        self.templates[node.id] = templates
        self.graph.add_node(node.id, node=node)
        if streamed_from is not None:
            self.graph.add_edge(streamed_from, node.id, kind="stream")
        for dep in node.depends:
            if self.graph.get_edge_data(dep, node.id, {}).get("kind") in (None, "stream"):
                self.graph.add_edge(dep, node.id, kind="order")
        for ref in self.refs(node.id):
            if ref.source == "node":
                self.graph.add_edge(ref.name, node.id, kind="data")

    def _node_templates(self, node: LLMCall | ToolCall) -> dict[str, Template]:
        if isinstance(node, ToolCall):
            return {"args": self._compile(node.args, node.id, "args")}
        if node.prompt is not None:
            return {"prompt": self._compile(node.prompt, node.id, "prompt")}
        assert node.messages is not None
        return {
            f"messages[{i}]": self._compile(m.content, node.id, f"messages[{i}]")
            for i, m in enumerate(node.messages)
        }

    def _compile(self, value: Any, node: str | None, part: str) -> Template:
        try:
            return compile_template(value)
        except RefSyntaxError as exc:
            owner = f"node {node!r}" if node is not None else "outputs"
            where = self.source.where(node) if node is not None else {"path": self.source.path, "line": None}
            raise ReferenceSyntaxError(f"{owner}: {part}: {exc}", node=node, **where) from None

    def remove_node(self, node_id: str) -> None:
        """Take back a node that no other node depends on (a node added at run time that did not validate)."""
        if any(True for _ in self.graph.successors(node_id)):
            raise ValueError(f"node {node_id!r} has dependents; it cannot be removed")
        del self.nodes[node_id]
        del self.templates[node_id]
        self.graph.remove_node(node_id)

    def refs(self, node_id: str) -> tuple[Ref, ...]:
        """Every reference in the node's templates, in order."""
        return tuple(r for t in self.templates[node_id].values() for r in t.refs)

    def deps(self, node_id: str) -> list[str]:
        return list(self.graph.predecessors(node_id))

    def dependents(self, node_id: str) -> list[str]:
        return list(self.graph.successors(node_id))

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __repr__(self) -> str:
        return f"Program({self.name!r}, nodes={len(self.nodes)}, edges={self.graph.number_of_edges()})"
