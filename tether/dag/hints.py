"""``ProgramHints``: what the scheduler knows about one LLM call of a program, from the DAG compiler (or the
server, replay, an agent) to the engine in one frozen, torch-free type. ``LLMHints`` is the same type."""

from __future__ import annotations

from dataclasses import dataclass


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


LLMHints = ProgramHints
