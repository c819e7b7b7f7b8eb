"""What the engine knows about each program across its turns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProgramState:
    program_id: str
    arrival: float  # the first turn's arrival
    turns_seen: int = 0
    attained_tokens: int = 0  # tokens computed for this program so far (Autellix's attained service)
    last_turn_end: float | None = None
    tool: str | None = None  # the tool running now, if any
    tool_started: float | None = None
    predicted_return: float | None = None  # when the policy expects the next turn


class ProgramTable:
    def __init__(self) -> None:
        self._programs: dict[str, ProgramState] = {}
        self.finished_turn_counts: list[int] = []  # turns of each finished program (for guesses)

    def get(self, program_id: str) -> ProgramState | None:
        return self._programs.get(program_id)

    def open(self, program_id: str, now: float) -> ProgramState:
        state = self._programs.get(program_id)
        if state is None:
            state = self._programs[program_id] = ProgramState(program_id, now)
        return state

    def close(self, program_id: str) -> None:
        state = self._programs.pop(program_id, None)
        if state is not None:
            self.finished_turn_counts.append(state.turns_seen)

    def __iter__(self):
        return iter(self._programs.values())

    def __len__(self) -> int:
        return len(self._programs)

    def mean_turns(self, default: float = 10.0) -> float:
        counts = self.finished_turn_counts
        return sum(counts) / len(counts) if counts else default
