"""Typed tools, their registry and duration statistics, local and MQTT execution (see the tools issue)."""

from __future__ import annotations

from tools.distributions import DurationModel, EmpiricalDistribution, ExponentialPrior
from tools.durations import DurationSource, ToolDurationStats
from tools.errors import (
    ToolArgumentError,
    ToolError,
    ToolExecutionError,
    ToolStatsError,
    ToolTimeoutError,
    UnknownToolError,
)
from tools.local import LocalToolRunner
from tools.registry import ToolRegistry, default_registry
from tools.runner import ToolRunner
from tools.tool import Tool, tool
from tools.traces import NegativePolicy, ToolCallRecord, iter_tool_calls, read_tool_calls

__all__ = [
    "DurationModel",
    "DurationSource",
    "EmpiricalDistribution",
    "ExponentialPrior",
    "NegativePolicy",
    "ToolCallRecord",
    "ToolDurationStats",
    "ToolError",
    "ToolStatsError",
    "iter_tool_calls",
    "read_tool_calls",
    "LocalToolRunner",
    "Tool",
    "ToolArgumentError",
    "ToolExecutionError",
    "ToolRegistry",
    "ToolRunner",
    "ToolTimeoutError",
    "UnknownToolError",
    "default_registry",
    "tool",
]
