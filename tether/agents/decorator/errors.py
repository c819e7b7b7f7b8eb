"""Typed errors of decorator agents. Each is a ``DagError``: ``node`` names the node at fault when there is
one, and ``path`` / ``line`` the line of the agent function where it happened when known."""

from __future__ import annotations

from tether.dag.errors import DagError


class AgentError(DagError):
    """Base class of the decorator-agent errors."""


class AgentDefinitionError(AgentError):
    """``@agent`` on something that is not an ``async def`` function, or a bad agent name."""


class AgentContextError(AgentError):
    """``llm()`` / ``conversation()`` / a nested agent call outside a running (or compiling) agent."""


class ForeignHandleError(AgentError):
    """A handle of one agent run used or awaited inside another run (its node is not in this program)."""


class HandleUsageError(AgentError):
    """A handle used as if it were its value (``if h:``, ``h + 1``, ``len(h)``): ``await`` it first."""


class AgentArgumentError(AgentError):
    """A tool or ``llm()`` call the agent made with arguments that cannot be recorded (too many positional
    arguments, an argument given twice, a tool the runtime registers under the same name)."""


class ValueDependentError(AgentError):
    """While compiling, the agent used a value that is only known when the program runs (a branch on it,
    ``len``, iteration, arithmetic...): such an agent cannot be compiled to a static program (run it)."""
