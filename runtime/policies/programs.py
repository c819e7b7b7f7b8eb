"""What the engine knows about each program across its turns, and about the programs that have finished."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.policies.predictor import RemainingWorkPredictor

SERVICE_QUANTUM_TOKENS = 64.0


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
    def __init__(
        self,
        turns: RemainingWorkPredictor | None = None,
        service: RemainingWorkPredictor | None = None,
    ) -> None:
        self._programs: dict[str, ProgramState] = {}
        self.finished_turn_counts: list[int] = []  # turns of each finished program (for guesses)
        # Both learn from finished programs only (``close``): a running program's future is never an input.
        # ``turns``: total turns (a prior from the shipped traces); ``service``: total tokens computed (no
        # prior: token counts depend on the model and the scale).
        self.turns = turns or RemainingWorkPredictor.with_shipped_prior()
        self.service = service or RemainingWorkPredictor(quantum=SERVICE_QUANTUM_TOKENS)
        self._finished_turns = 0
        self._finished_tokens = 0

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
            self.turns.observe(state.turns_seen)
            self.service.observe(state.attained_tokens)
            self._finished_turns += state.turns_seen
            self._finished_tokens += state.attained_tokens

    def __iter__(self):
        return iter(self._programs.values())

    def __len__(self) -> int:
        return len(self._programs)

    def tokens_per_turn(self, state: ProgramState) -> float:
        """Service per turn: over finished programs, or the program's own so far before any has finished."""
        if self._finished_turns:
            return self._finished_tokens / self._finished_turns
        return max(1.0, state.attained_tokens / max(1, state.turns_seen))

    def mean_turns(self, default: float = 10.0) -> float:
        counts = self.finished_turn_counts
        return sum(counts) / len(counts) if counts else default
