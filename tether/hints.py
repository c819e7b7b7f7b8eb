"""``ProgramHints``: what the scheduler knows about one LLM call of a program, from the DAG compiler (or the
server, replay, an agent) to the engine in one frozen, torch-free type, and its one wire form (the ``tether``
object of an HTTP request: ``to_wire`` / ``from_wire``). ``LLMHints`` is the same type. It sits at the bottom
of the house: the DAG compiler, the engine, the server and the clients all import it from here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class HintsWireError(ValueError):
    """A ``tether`` object that is not a valid ``ProgramHints``: ``field`` names the member at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"tether.{field}: {message}" if field else f"tether: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, init=False)
class ProgramHints:
    """What the program-level scheduler knows about the program a request belongs to, when the request is
    submitted (filled by replay, the server, an agent or the DAG compiler; all optional).

    The hints rule: a field carries only what the deployment knows at that moment, never a program's future.

    =============== =================================== ===================================================
    field           known at                            by whom
    =============== =================================== ===================================================
    program_id      submission                          the client (session id, DAG run id, replay)
    turn            submission                          the client: how many turns it has sent before (the
                                                        compiler: LLM calls before it on its longest chain)
    next_tools      turn end (the output's tool call);  the engine's output parser (``TurnOutcome``); at
                    submission only if a static DAG     submission only the DAG compiler, where the graph
                    fixes it                            fixes the tools after this call (longest predicted
                                                        first; ``next_tool`` is the first)
    remaining_turns submission, only if a static DAG    the DAG compiler (a workflow whose LLM calls are
                    fixes it; ``None`` otherwise        fixed); never an open-ended agent, never a trace
    last_turn       turn end (no tool call in the       the engine's output parser; at submission only a
                    output); at submission only if a    static DAG
                    static DAG fixes it
    prefix_group    submission, only if a DAG's         the DAG compiler: the id of the calls of one
                    prompts share static text           program whose prompts start with the same text
                                                        (``None`` when it shares with none)
    =============== =================================== ===================================================

    Policies read ``next_tool`` and ``last_turn`` only at turn end, through ``TurnOutcome``. A replayed trace
    program is an open-ended agent: its requests carry ``program_id`` and ``turn`` alone, and each turn's tool
    is revealed when the turn ends (``tether replay --hints oracle`` adds the true ``remaining_turns``: a
    labelled bound, never a result). ``next_tool=`` is accepted by the constructor as ``next_tools=(tool,)``.
    """

    program_id: str | None = None
    turn: int = 0
    next_tools: tuple[str, ...] = ()
    remaining_turns: int | None = None
    last_turn: bool = False
    prefix_group: str | None = None

    def __init__(
        self,
        program_id: str | None = None,
        turn: int = 0,
        *,
        next_tool: str | None = None,
        next_tools: tuple[str, ...] = (),
        remaining_turns: int | None = None,
        last_turn: bool = False,
        prefix_group: str | None = None,
    ) -> None:
        tools = tuple(next_tools)
        if next_tool is not None:
            if tools and tools[0] != next_tool:
                raise ValueError(f"next_tool {next_tool!r} is not the first of next_tools {tools!r}")
            tools = tools or (next_tool,)
        object.__setattr__(self, "program_id", program_id)
        object.__setattr__(self, "turn", turn)
        object.__setattr__(self, "next_tools", tools)
        object.__setattr__(self, "remaining_turns", remaining_turns)
        object.__setattr__(self, "last_turn", last_turn)
        object.__setattr__(self, "prefix_group", prefix_group)

    @property
    def next_tool(self) -> str | None:
        """The first of ``next_tools`` (the longest predicted), ``None`` when none is known."""
        return self.next_tools[0] if self.next_tools else None

    def to_wire(self) -> dict[str, Any]:
        """The ``tether`` object of an HTTP request: every field that is set (defaults left out)."""
        doc: dict[str, Any] = {"turn": self.turn}
        if self.program_id is not None:
            doc["program_id"] = self.program_id
        if self.next_tools:
            doc["next_tools"] = list(self.next_tools)
        if self.remaining_turns is not None:
            doc["remaining_turns"] = self.remaining_turns
        if self.last_turn:
            doc["last_turn"] = True
        if self.prefix_group is not None:
            doc["prefix_group"] = self.prefix_group
        return doc

    @staticmethod
    def from_wire(doc: Mapping[str, Any]) -> ProgramHints:
        """The hints a ``tether`` object carries (``next_tool``, a single tool, is accepted as the first of
        ``next_tools``). Raises ``HintsWireError`` naming the first bad or unknown member."""
        if not isinstance(doc, Mapping):
            raise HintsWireError("", f"expected an object, got {type(doc).__name__}")
        unknown = sorted(set(doc) - set(_WIRE))
        if unknown:
            raise HintsWireError(unknown[0], f"unknown field (known: {', '.join(_WIRE)})")
        values = {name: check(name, doc[name]) for name, check in _WIRE.items() if doc.get(name) is not None}
        try:
            return ProgramHints(**values)
        except ValueError as exc:  # next_tool that is not the first of next_tools
            raise HintsWireError("next_tool", str(exc)) from None


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise HintsWireError(name, f"expected a non-empty string, got {value!r}")
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HintsWireError(name, f"expected an integer >= 0, got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise HintsWireError(name, f"expected true or false, got {value!r}")
    return value


def _tools(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise HintsWireError(name, f"expected a list of tool names, got {value!r}")
    return tuple(_text(f"{name}[{i}]", tool) for i, tool in enumerate(value))


_WIRE = {
    "program_id": _text,
    "turn": _count,
    "next_tool": _text,
    "next_tools": _tools,
    "remaining_turns": _count,
    "last_turn": _flag,
    "prefix_group": _text,
}


LLMHints = ProgramHints


@dataclass(frozen=True)
class TurnOutcome:
    """What a finished turn's output says: the tool it called (``None``: no tool call) and whether the program
    ends here. Known at turn end, from the output itself (a server parses the tool call; replay reveals the
    trace's tool for the turn that just ended; an in-process agent reads its own reply: ``OutcomeReader``)."""

    next_tool: str | None
    last_turn: bool

    @staticmethod
    def from_hints(hints: ProgramHints) -> TurnOutcome:
        """The default when nobody parses the output: what the submitter said (a static DAG's plan)."""
        return TurnOutcome(hints.next_tool, hints.last_turn or hints.remaining_turns == 0)


OutcomeReader = Callable[[str], "TurnOutcome | None"]
"""Reads a finished turn's text into its ``TurnOutcome`` (``None``: the text does not say; the hints do). An
agent that knows its reply's format gives one with its LLM call (the planner's plan names the tools it
dispatched, a ReAct turn its action); the local engine calls it on its own thread when the turn ends."""
