"""DAG compiler: agent programs as graphs of dependent LLM calls and tool calls (docs/workflow-yaml.md,
docs/architecture.md).

``load_workflow(path)`` -> ``Program``; ``compile_program(program, registry)`` -> ``CompiledProgram``.
"""

from __future__ import annotations

from tether.dag.compiler import CompiledProgram, CriticalPath, LLMHints, compile_program, extend
from tether.dag.errors import DagError
from tether.dag.ir import (
    FunctionCall,
    InputSpec,
    LLMCall,
    Message,
    MessageToolCall,
    Program,
    RetryPolicy,
    ToolCall,
    ToolFailure,
)
from tether.dag.refs import Ref, node_ref, parse_ref
from tether.dag.yaml_loader import load_workflow, parse_workflow
from tether.hints import ProgramHints

__all__ = [
    "CompiledProgram",
    "CriticalPath",
    "DagError",
    "FunctionCall",
    "InputSpec",
    "LLMCall",
    "LLMHints",
    "Message",
    "MessageToolCall",
    "Program",
    "ProgramHints",
    "Ref",
    "RetryPolicy",
    "ToolCall",
    "ToolFailure",
    "compile_program",
    "extend",
    "load_workflow",
    "node_ref",
    "parse_ref",
    "parse_workflow",
]
