"""DAG compiler: agent programs as graphs of dependent LLM calls and tool calls (see the DAG issue).

``load_workflow(path)`` -> ``Program``; ``compile_program(program, registry)`` -> ``CompiledProgram``.
"""

from __future__ import annotations

from dag.compiler import CompiledProgram, CriticalPath, LLMHints, compile_program, extend
from dag.errors import DagError
from dag.ir import (
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
from dag.refs import Ref, node_ref, parse_ref
from dag.yaml_loader import load_workflow, parse_workflow

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
    "Ref",
    "RetryPolicy",
    "ToolCall",
    "ToolFailure",
    "ToolFailure",
    "compile_program",
    "extend",
    "load_workflow",
    "node_ref",
    "parse_ref",
    "parse_workflow",
]
