"""``AgentResult``: what a planner or a ReAct agent run returns (shared by both, and by the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.agents.planner.plan import PlanTask


@dataclass(frozen=True)
class Observation:
    """One tool call the agent made and what came back: ``value`` is the tool's typed result (``None`` with
    ``error`` set when the call failed; the agent saw the error text)."""

    task: int  # the plan task index (planner) or the turn (ReAct)
    tool: str
    args: dict[str, Any]
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class LLMUsage:
    """One LLM call of the run: its role (``"planner"``, ``"joiner"``, ``"react"``), tokens and time."""

    role: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    seconds: float


@dataclass(frozen=True)
class AgentResult:
    """``answer``: the final answer text; ``plans``: every plan the planner made, in order (empty for ReAct);
    ``observations``: every tool call in the order they finished; ``llm_calls``: every LLM call;
    ``trace_id``: the run's program id (its events are in the trace); ``replans``: how many times the
    joiner asked for a new plan; ``seconds``: wall time of ``run``."""

    answer: str
    plans: list[list[PlanTask]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    llm_calls: list[LLMUsage] = field(default_factory=list)
    trace_id: str = ""
    replans: int = 0
    seconds: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.llm_calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.llm_calls)
