"""Front-ends that compile to ``dag`` programs and run on the executor (see docs/agents.md):

- decorator agents: ``@agent`` async functions whose ``llm()`` and ``@tool`` calls are running handles;
- the LLMCompiler-style ``Planner`` (streamed, grammar-constrained plans, joiner, replanning);
- ``ReActAgent``, the one-tool-per-turn baseline;
- ``AgentRuntime`` (one executor, tools, backend, trace) and ``AgentResult``.

Names resolve lazily, so ``import agents`` loads neither the engine nor the executor.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "agent": "agents.decorator",
    "llm": "agents.decorator",
    "conversation": "agents.decorator",
    "Agent": "agents.decorator",
    "AgentRun": "agents.decorator",
    "NodeHandle": "agents.decorator",
    "AgentError": "agents.decorator",
    "AgentContextError": "agents.decorator",
    "ValueDependentError": "agents.decorator",
    "HandleUsageError": "agents.decorator",
    "Planner": "agents.planner.agent",
    "ReActAgent": "agents.react",
    "AgentRuntime": "agents.runtime",
    "AgentResult": "agents.result",
    "Observation": "agents.result",
    "LLMUsage": "agents.result",
    "parse_plan": "agents.planner",
    "PlanTask": "agents.planner",
    "PlanError": "agents.planner",
    "PlanStreamParser": "agents.planner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
