"""What a finished turn's output says, for the engine's program layer (given to the engine as its
``turn_outcome``), and the tool pauses of remote clients.

A chat request that offered tools is read as an agent turn: its output's first ``<tool_call>`` names the tool
now running (the policy keeps the program's KV by what it is worth for that tool), and an answer without a call
ends the program (the agent answered). Any other request falls back on what its client said in the ``tether``
object (``TurnOutcome.from_hints``).

The client runs its tools, so the server is their only observer: the pause from a turn that called a tool to
the program's next request is that tool's duration, recorded into the deployment's statistics
(``ToolDurationStats``, which the engine only reads). When the turn ends, the statistics' prediction for the tool
(its mean and p95, from what was observed before that moment) is kept beside the clock, and ``resumed`` returns it
with the actual pause (``ToolTime``: the server's ``/metrics`` compares them). The engine calls ``outcome`` on
its own thread; requests are registered and dropped from the event loop (single dict operations, atomic under the
GIL; the pauses under a lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from tether.runtime.engine.chat import Tool, ToolCallParseError, parse_tool_calls
from tether.runtime.engine.sequence import Sequence, TurnOutcome
from tether.tools.durations import ToolDurationStats


@dataclass(frozen=True)
class ToolTime:
    """One timed tool call of a remote client: ``actual_s``, the pause from the turn that called ``tool`` to the
    program's next request; ``mean_s`` and ``p95_s``, what the tool statistics predicted when that turn ended
    (before this call was observed)."""

    tool: str
    actual_s: float
    mean_s: float
    p95_s: float


@dataclass(frozen=True)
class _Pause:
    tool: str
    since: float
    mean_s: float
    p95_s: float


class TurnOutcomes:
    def __init__(
        self, tool_stats: ToolDurationStats | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``tool_stats``: where the pauses go (``None``: nowhere); ``clock``: the engine's."""
        self._tools: dict[str, tuple[Tool, ...]] = {}
        self.tool_stats = tool_stats
        self.clock = clock
        self._paused: dict[str, _Pause] = {}  # program -> the tool it called, when, and what was predicted
        self._lock = threading.Lock()

    def expect_tool_calls(self, request_id: str, tools: Seq[Tool]) -> None:
        """``request_id`` offered ``tools``: parse its output when it ends."""
        self._tools[request_id] = tuple(tools)

    def drop(self, request_id: str) -> None:
        self._tools.pop(request_id, None)

    def outcome(self, seq: Sequence) -> TurnOutcome:
        out = self._parse(seq)
        pid = seq.hints.program_id
        if pid is not None:
            with self._lock:
                if out.next_tool is not None and not out.last_turn:
                    self._paused[pid] = self._pause(out.next_tool)
                else:
                    self._paused.pop(pid, None)
        return out

    def _pause(self, tool: str) -> _Pause:
        stats = self.tool_stats
        if stats is None:
            return _Pause(tool, self.clock(), float("nan"), float("nan"))
        return _Pause(tool, self.clock(), stats.mean(tool), stats.quantile(tool, 0.95))

    def resumed(self, pid: str) -> ToolTime | None:
        """The program's next request arrived: the tool its last turn called has returned. Its time and what was
        predicted for it, or ``None`` when the program was not paused on a tool (or nothing records tools)."""
        with self._lock:
            paused = self._paused.pop(pid, None)
        if paused is None or self.tool_stats is None:
            return None
        actual = max(0.0, self.clock() - paused.since)
        self.tool_stats.observe(paused.tool, actual)
        return ToolTime(paused.tool, actual, paused.mean_s, paused.p95_s)

    def ended(self, pid: str) -> None:
        """The program ended: a tool still running is not timed."""
        with self._lock:
            self._paused.pop(pid, None)

    def _parse(self, seq: Sequence) -> TurnOutcome:
        tools = self._tools.pop(seq.request_id, None)
        if tools is None:
            return TurnOutcome.from_hints(seq.hints)
        try:
            parsed = parse_tool_calls(seq.output_text, tools)
        except ToolCallParseError:
            return TurnOutcome(None, last_turn=False)  # it tried to call something: the program goes on
        if parsed.tool_calls:
            return TurnOutcome(parsed.tool_calls[0].name, last_turn=False)
        return TurnOutcome(None, last_turn=True)
