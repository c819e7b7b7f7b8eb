"""Front-ends that compile to ``dag`` programs and run on the executor (see docs/agents.md):

- decorator agents: ``@agent`` async functions whose ``llm()`` and ``@tool`` calls are running handles;
- the LLMCompiler-style ``Planner`` (streamed, grammar-constrained plans, joiner, replanning);
- ``ReActAgent``, the one-tool-per-turn baseline;
- ``AgentRuntime`` (one executor, tools, backend, trace) and ``AgentResult``.

Names resolve lazily, so ``import tether.agents`` loads neither the engine nor the executor.
"""

from __future__ import annotations

from tether._lazy import lazy_exports

_EXPORTS = {
    "agent": "tether.agents.decorator",
    "llm": "tether.agents.decorator",
    "conversation": "tether.agents.decorator",
    "Agent": "tether.agents.decorator",
    "AgentRun": "tether.agents.decorator",
    "NodeHandle": "tether.agents.decorator",
    "AgentError": "tether.agents.decorator",
    "AgentContextError": "tether.agents.decorator",
    "ValueDependentError": "tether.agents.decorator",
    "HandleUsageError": "tether.agents.decorator",
    "Planner": "tether.agents.planner.agent",
    "ReActAgent": "tether.agents.react",
    "AgentRuntime": "tether.agents.runtime",
    "AgentResult": "tether.agents.result",
    "Observation": "tether.agents.result",
    "LLMUsage": "tether.agents.result",
    "parse_plan": "tether.agents.planner",
    "PlanTask": "tether.agents.planner",
    "PlanError": "tether.agents.planner",
    "PlanStreamParser": "tether.agents.planner",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
