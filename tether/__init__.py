"""Tether: a runtime for agentic LLM workloads. The packages live under this one namespace (``runtime``,
``dag``, ``tools``, ``kvcache``, ``kernels``, ``agents``; docs/architecture.md), and this module re-exports what
users touch::

    from tether import LLM, SamplingParams, StructuredOutputs, AsyncEngine, tool, agent, llm, Planner, run_workflow

Every name is imported on first use (PEP 562), so ``import tether.dag`` or ``import tether.runtime.policies``
never pulls torch in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether._lazy import lazy_exports

if TYPE_CHECKING:
    from tether.agents.decorator import agent, llm
    from tether.agents.planner.agent import Planner
    from tether.runtime.engine.async_engine import AsyncEngine
    from tether.runtime.engine.llm import LLM
    from tether.runtime.engine.sampling_params import SamplingParams
    from tether.runtime.engine.structured.params import StructuredOutputs
    from tether.runtime.executor.workflow import run_workflow
    from tether.tools.tool import tool

_EXPORTS = {
    "LLM": "tether.runtime.engine.llm",
    "SamplingParams": "tether.runtime.engine.sampling_params",
    "StructuredOutputs": "tether.runtime.engine.structured.params",
    "AsyncEngine": "tether.runtime.engine.async_engine",
    "tool": "tether.tools.tool",
    "agent": "tether.agents.decorator",
    "llm": "tether.agents.decorator",
    "Planner": "tether.agents.planner.agent",
    "run_workflow": "tether.runtime.executor.workflow",
}

__all__ = [
    "LLM",
    "AsyncEngine",
    "Planner",
    "SamplingParams",
    "StructuredOutputs",
    "agent",
    "llm",
    "run_workflow",
    "tool",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
