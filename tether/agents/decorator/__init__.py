"""Decorator agents: ``@agent`` async functions whose ``llm()`` and ``@tool`` calls return handles to nodes
of one growing program (run at once, in parallel where independent), or compile to a static one.
See docs/agents.md, "Decorator agents"."""

from tether.agents.decorator.agent import Agent, AgentRun, agent
from tether.agents.decorator.context import AgentContext, llm
from tether.agents.decorator.conversation import Conversation, conversation
from tether.agents.decorator.errors import (
    AgentArgumentError,
    AgentContextError,
    AgentDefinitionError,
    AgentError,
    ForeignHandleError,
    HandleUsageError,
    ValueDependentError,
)
from tether.agents.decorator.handles import NodeHandle, Reference, Symbolic

__all__ = [
    "Agent",
    "AgentArgumentError",
    "AgentContext",
    "AgentContextError",
    "AgentDefinitionError",
    "AgentError",
    "AgentRun",
    "Conversation",
    "ForeignHandleError",
    "HandleUsageError",
    "NodeHandle",
    "Reference",
    "Symbolic",
    "ValueDependentError",
    "agent",
    "conversation",
    "llm",
]
