"""Decorator agents: ``@agent`` async functions whose ``llm()`` and ``@tool`` calls return handles to nodes
of one growing program (run at once, in parallel where independent), or compile to a static one.
See docs/agents.md, "Decorator agents"."""

from agents.decorator.agent import Agent, AgentRun, agent
from agents.decorator.context import AgentContext, llm
from agents.decorator.conversation import Conversation, conversation
from agents.decorator.errors import (
    AgentArgumentError,
    AgentContextError,
    AgentDefinitionError,
    AgentError,
    ForeignHandleError,
    HandleUsageError,
    ValueDependentError,
)
from agents.decorator.handles import NodeHandle, Reference, Symbolic

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
