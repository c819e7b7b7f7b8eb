"""What the engine knows about each program across its turns, and about the programs that have finished."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from tether.runtime.policies.predictor import RemainingWorkPredictor

EVICTED_QUEUE_WINDOW = (
    100  # Continuum's T: sliding window of queueing delays after eviction (length our choice)
)
SERVICE_QUANTUM_TOKENS = 64.0


@dataclass
class ProgramState:
    program_id: str
    arrival: float  # the first turn's arrival
    turns_seen: int = 0
    attained_tokens: int = 0  # tokens computed for the first time (Autellix's attained service)
    computed_high: int = 0  # highest context position ever computed: recomputation below it is not service
    service_s: float = 0.0  # engine seconds of steps in which the program ran (Autellix's starvation ratio)
    wait_s: float = 0.0  # seconds its turns spent in the waiting queue, ongoing wait excluded
    waiting_since: float | None = None  # a turn of the program waits for admission since then
    promoted: bool = False  # starvation guard (Autellix): top queue until the waiting turn is admitted
    tool: str | None = None  # the tool running now, if any
    tool_started: float | None = None
    predicted_return: float | None = None  # when the policy expects the next turn
    prefix_groups: set[str] = field(default_factory=set)  # hinted prefix groups with a request admitted

    def waited_s(self, now: float) -> float:
        """Total wait including the wait going on now."""
        return self.wait_s + (now - self.waiting_since if self.waiting_since is not None else 0.0)


class ProgramTable:
    def __init__(
        self,
        turns: RemainingWorkPredictor | None = None,
        service: RemainingWorkPredictor | None = None,
        prior_exclude: str | None = None,
    ) -> None:
        """``prior_exclude``: the trace the shipped turns prior leaves out (``with_shipped_prior``)."""
        self._programs: dict[str, ProgramState] = {}
        # Both learn from finished programs only (``close``): a running program's future is never an input.
        # ``turns``: total turns (a prior from the shipped traces); ``service``: total tokens computed (no
        # prior: token counts depend on the model and the scale).
        self.turns = turns or RemainingWorkPredictor.with_shipped_prior(exclude=prior_exclude)
        self.service = service or RemainingWorkPredictor(quantum=SERVICE_QUANTUM_TOKENS)
        self._finished_turns = 0
        self._finished_tokens = 0
        self.evicted_queue_delays: deque[float] = deque(maxlen=EVICTED_QUEUE_WINDOW)
        self._pairs = [0, 0.0, 0.0, 0.0, 0.0, 0.0]  # n, sum k, sum r, sum k^2, sum r^2, sum k*r (r = N - k)

    def get(self, program_id: str) -> ProgramState | None:
        return self._programs.get(program_id)

    def open(self, program_id: str, now: float) -> ProgramState:
        state = self._programs.get(program_id)
        if state is None:
            state = self._programs[program_id] = ProgramState(program_id, now)
        return state

    def close(self, program_id: str) -> None:
        state = self._programs.pop(program_id, None)
        if state is None:
            return
        n = state.turns_seen
        self.turns.observe(n)
        self.service.observe(state.attained_tokens)
        self._finished_turns += n
        self._finished_tokens += state.attained_tokens
        p = self._pairs
        for k in range(1, n + 1):
            r = n - k
            p[0] += 1
            p[1] += k
            p[2] += r
            p[3] += k * k
            p[4] += r * r
            p[5] += k * r

    def __iter__(self):
        return iter(self._programs.values())

    def __len__(self) -> int:
        return len(self._programs)

    def tokens_per_turn(self, state: ProgramState) -> float:
        """Service per turn: over finished programs, or the program's own so far before any has finished."""
        if self._finished_turns:
            return self._finished_tokens / self._finished_turns
        return max(1.0, state.attained_tokens / max(1, state.turns_seen))

    def observe_evicted_queue_delay(self, seconds: float) -> None:
        """A follow-up turn whose KV was not kept waited ``seconds`` between its arrival and its admission."""
        self.evicted_queue_delays.append(max(0.0, seconds))

    def evicted_queue_delay(self) -> float:
        """Continuum's ``T``: the sliding average of the queueing delay seen after eviction (0 before any)."""
        d = self.evicted_queue_delays
        return sum(d) / len(d) if d else 0.0

    def memoryfulness(self) -> float:
        """Continuum's ``eta`` read as ``-Corr(k, N - k)`` over the turns ``k = 1..N`` of finished programs of
        ``N`` turns; 1 while the correlation is undefined (fewer than two distinct values); clipped to [0, 1]."""
        n, sk, sr, skk, srr, skr = self._pairs
        if n < 2:
            return 1.0
        var_k, var_r = skk / n - (sk / n) ** 2, srr / n - (sr / n) ** 2
        if var_k <= 1e-12 or var_r <= 1e-12:
            return 1.0
        corr = (skr / n - (sk / n) * (sr / n)) / math.sqrt(var_k * var_r)
        return min(1.0, max(0.0, -corr))
