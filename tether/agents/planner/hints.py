"""What the planner's LLM calls tell the engine (docs/agents.md, "Hints"), by the hints rule (``tether.hints``):
only what is known at that moment.

At submission (``LLMHints``): the call's ``turn`` (the LLM calls of the run before it); the calls left where
the round fixes them (on the last round a plan is followed by exactly its joiner, ``remaining_turns=1``, and
that joiner is the last turn, ``remaining_turns=0``, ``last_turn=True``; an earlier round may replan, so
``None``); and its ``prefix_group``: every planner call of a run starts with the same system prompt and
question (``planner``), every joiner call with the joiner's system prompt, example and question (``joiner``).

When the turn ends (a ``TurnOutcome``, read from the reply on the engine's thread): a plan's next tool is the
tool of its tasks with the longest predicted duration (the compiler's order for ``next_tools``), never its last
turn; a joiner's turn is the last unless it replans on a round that may.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.agents.planner.joiner import parse_joiner
from tether.agents.planner.parse import PlanBuilder
from tether.agents.planner.plan import PlanError
from tether.hints import LLMHints, OutcomeReader, TurnOutcome
from tether.tools.durations import ToolDurationStats

PLAN_GROUP = "planner"
JOIN_GROUP = "joiner"


def plan_hints(turn: int, final: bool) -> LLMHints:
    """A planner call's hints; ``final``: the last round (its joiner must finish)."""
    return LLMHints(turn=turn, remaining_turns=1 if final else None, prefix_group=PLAN_GROUP)


def join_hints(turn: int, final: bool) -> LLMHints:
    """A joiner call's hints; on the last round it is the run's last LLM call."""
    return LLMHints(turn=turn, remaining_turns=0 if final else None, last_turn=final, prefix_group=JOIN_GROUP)


def plan_tools(text: str, tools: Any = None) -> list[str]:
    """The tools of a plan's tasks, in order: its complete lines up to ``join()`` or the first bad line (the
    tasks the planner dispatches; a last line without a newline counts when it parses)."""
    builder = PlanBuilder(tools)
    out: list[str] = []
    for line in text.split("\n"):
        try:
            task = builder.add_line(line)
        except PlanError:
            break
        if task is None:
            continue
        if task.is_join:
            break
        out.append(task.tool)
    return out


def plan_outcome(tools: Sequence[Any], stats: ToolDurationStats) -> OutcomeReader:
    """Reads a finished plan: its next tool is the one of its tools ``stats`` predicts longest."""

    def read(text: str) -> TurnOutcome:
        names = plan_tools(text, tools)
        if not names:
            return TurnOutcome(None, last_turn=False)
        return TurnOutcome(max(names, key=lambda n: (stats.mean(n), -names.index(n))), last_turn=False)

    return read


def join_outcome(final: bool) -> OutcomeReader:
    """Reads a finished joiner reply: the run ends unless it replans on a round that may."""

    def read(text: str) -> TurnOutcome:
        decision = parse_joiner(text)
        return TurnOutcome(None, last_turn=not (decision.replan and not final))

    return read
