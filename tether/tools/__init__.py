"""Typed tools, their registry and duration statistics, local and MQTT execution (docs/tools-mqtt.md,
docs/architecture.md)."""

from __future__ import annotations

from tether.tools.distributions import DurationModel, EmpiricalDistribution, ExponentialPrior
from tether.tools.durations import DurationSource, ToolDurationStats
from tether.tools.errors import (
    ToolArgumentError,
    ToolError,
    ToolExecutionError,
    ToolStatsError,
    ToolTimeoutError,
    UnknownToolError,
)
from tether.tools.local import LocalToolRunner
from tether.tools.registry import ToolRegistry, default_registry
from tether.tools.runner import ToolRunner
from tether.tools.store import ToolDurationStore, deployment_stats, save_deployment_stats
from tether.tools.tool import Tool, tool
from tether.tools.traces import NegativePolicy, ToolCallRecord, iter_tool_calls, read_tool_calls

__all__ = [
    "DurationModel",
    "DurationSource",
    "EmpiricalDistribution",
    "ExponentialPrior",
    "NegativePolicy",
    "ToolCallRecord",
    "ToolDurationStats",
    "ToolDurationStore",
    "deployment_stats",
    "save_deployment_stats",
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
