"""The compiler's validation pass: references, cycles, tools, arguments and output schemas, each failure a
``DagError`` naming the node (and the workflow line when the program came from a file)."""

from __future__ import annotations

from typing import Any

import networkx as nx
from pydantic import TypeAdapter

from tether.dag.errors import (
    CycleError,
    OutputSchemaError,
    ToolArgumentsError,
    ToolNotFoundError,
    UnknownReferenceError,
)
from tether.dag.ir import LLMCall, Program, ToolCall
from tether.dag.refs import Ref, Template, find_refs
from tether.dag.schema import SchemaConversionError, check_path, output_type
from tether.tools.errors import ToolArgumentError
from tether.tools.registry import ToolRegistry

TEXT_SCHEMA: dict[str, Any] = {"type": "string"}


def validate(program: Program, registry: ToolRegistry | None) -> dict[str, TypeAdapter]:
    """Run every check; returns the output types of the LLM calls that declare an ``output`` schema."""
    check_references(program)
    check_acyclic(program)
    output_types = {}
    for node_id in program.nodes:
        adapter = check_node(program, node_id, registry)
        if adapter is not None:
            output_types[node_id] = adapter
    check_outputs(program, registry)
    return output_types


def check_references(program: Program) -> None:
    """Every referenced node and input exists (``depends`` included)."""
    for node_id, node in program.nodes.items():
        for dep in node.depends:
            if dep not in program.nodes:
                raise UnknownReferenceError(
                    node_id, f"depends: {dep}", "no node has this id", **program.source.where(node_id)
                )
        for ref in program.refs(node_id):
            reason = _missing(program, ref)
            if reason is not None:
                raise UnknownReferenceError(node_id, ref.text, reason, **program.source.where(node_id))


def _missing(program: Program, ref: Ref) -> str | None:
    if ref.source == "inputs":
        if ref.name not in program.inputs:
            return f"no input named {ref.name!r} (inputs: {', '.join(program.inputs) or 'none'})"
        return None
    if ref.name not in program.nodes:
        return f"no node named {ref.name!r}"
    return None


def check_acyclic(program: Program) -> None:
    if nx.is_directed_acyclic_graph(program.graph):  # O(V + E); find_cycle is slow on large DAGs
        return
    try:
        edges = nx.find_cycle(program.graph)
    except nx.NetworkXNoCycle:
        return
    cycle = tuple(u for u, _ in edges)
    first = min(cycle, key=lambda n: program.source.nodes.get(n, 0))
    k = cycle.index(first)
    ordered = cycle[k:] + cycle[:k]
    raise CycleError(ordered, **program.source.where(ordered[0]))


def check_node(program: Program, node_id: str, registry: ToolRegistry | None) -> TypeAdapter | None:
    """Tools, arguments and reference paths of one node; the output type of an LLM call with a schema."""
    node = program.nodes[node_id]
    where = program.source.where(node_id)
    for ref in program.refs(node_id):
        reason = check_path(source_schema(program, ref, registry), ref.path)
        if reason is not None:
            raise UnknownReferenceError(node_id, ref.text, reason, **where)
    if isinstance(node, ToolCall):
        _check_tool_call(node, program.templates[node_id]["args"], registry, where)
        return None
    if registry is not None:
        for name in node.tools:
            if name not in registry:
                raise ToolNotFoundError(node_id, name, registry.names(), **where)
    if node.output is None:
        return None
    try:
        return output_type(node.output, f"{node_id}_output")
    except SchemaConversionError as exc:
        raise OutputSchemaError(f"node {node_id!r}: output schema: {exc}", node=node_id, **where) from None


def _check_tool_call(
    node: ToolCall, args: Template, registry: ToolRegistry | None, where: dict[str, Any]
) -> None:
    if registry is None:
        return
    if node.tool not in registry:
        raise ToolNotFoundError(node.id, node.tool, registry.names(), **where)
    tool = registry.get(node.tool)
    unresolved = {k for k, v in node.args.items() if _has_ref(v)}
    try:
        tool.check_partial_args(node.args, unresolved)
    except ToolArgumentError as exc:
        raise ToolArgumentsError(node.id, node.tool, exc.field, exc.reason, **where) from None


def _has_ref(value: Any) -> bool:
    return bool(find_refs(value))


def source_schema(program: Program, ref: Ref, registry: ToolRegistry | None) -> dict[str, Any] | None:
    """The JSON schema of the value ``ref`` starts from (before its path), when known."""
    if ref.source == "inputs":
        spec = program.inputs.get(ref.name)
        return None if spec is None else {"type": spec.type}
    node = program.nodes.get(ref.name)
    if isinstance(node, LLMCall):
        return node.output if node.output is not None else TEXT_SCHEMA
    if isinstance(node, ToolCall) and registry is not None and node.tool in registry:
        return registry.get(node.tool).output_schema()
    return None


def check_outputs(program: Program, registry: ToolRegistry | None) -> None:
    for name, template in program.output_templates.items():
        where = program.source.where(output=name)
        for ref in template.refs:
            reason = _missing(program, ref) or check_path(source_schema(program, ref, registry), ref.path)
            if reason is not None:
                raise UnknownReferenceError(None, ref.text, f"output {name!r}: {reason}", **where)
