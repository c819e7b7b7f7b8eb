"""Program identity on the server: which program a request belongs to, its turn, and ending programs whose
clients went quiet.

A request names its program by, in this order: ``tether.program_id``, ``session_id`` (vLLM's field),
``prompt_cache_key`` (OpenAI's) or the ``X-Session-Id`` header. A request with none of them is a program of
its own (no pin outlives it). The turn is ``tether.turn`` when given, else how many requests of the program the
server has seen before. The other hints come only from the ``tether`` object, ``ProgramHints``'s wire form (the
hints rule: see ``ProgramHints``); the tool a turn really calls is parsed from its output when it
ends (``tether.runtime.server.outcome``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.server.protocol import _Common

SESSION_HEADER = "x-session-id"


def program_id_of(body: _Common, header: str | None) -> str | None:
    ext = body.tether or {}
    for pid in (ext.get("program_id"), body.session_id, body.prompt_cache_key, header):
        if pid:
            return pid
    return None


@dataclass
class _Program:
    turns: int = 0  # requests seen
    in_flight: int = 0
    last_seen: float = 0.0


class ProgramTracker:
    """Turn counts and last activity per program; ``idle(now)`` lists programs with no request in flight for
    ``idle_s`` seconds (the server ends them, releasing their pins)."""

    def __init__(self, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.clock = clock
        self._programs: dict[str, _Program] = {}

    def hints(self, body: _Common, header: str | None) -> ProgramHints | None:
        """The request's ``ProgramHints`` (``None`` without a program id); counts the request as a turn."""
        pid = program_id_of(body, header)
        if pid is None:
            return None
        state = self._programs.setdefault(pid, _Program())
        ext = body.tether or {}
        turn = ext["turn"] if ext.get("turn") is not None else state.turns
        state.turns += 1
        return replace(ProgramHints.from_wire(ext), program_id=pid, turn=turn)  # checked by parse_body

    def started(self, pid: str) -> None:
        state = self._programs.setdefault(pid, _Program())
        state.in_flight += 1
        state.last_seen = self.clock()

    def finished(self, pid: str) -> None:
        state = self._programs.get(pid)
        if state is not None:
            state.in_flight = max(0, state.in_flight - 1)
            state.last_seen = self.clock()

    def forget(self, pid: str) -> bool:
        """Drop the program (it ended); whether it was known."""
        return self._programs.pop(pid, None) is not None

    def idle(self) -> list[str]:
        now = self.clock()
        return [
            pid for pid, s in self._programs.items() if s.in_flight == 0 and now - s.last_seen >= self.idle_s
        ]

    def __contains__(self, pid: str) -> bool:
        return pid in self._programs

    def __len__(self) -> int:
        return len(self._programs)
