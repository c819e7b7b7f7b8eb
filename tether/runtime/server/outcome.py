"""What a finished turn's output says, for the engine's program layer (``LLMEngine.turn_outcome``).

A chat request that offered tools is read as an agent turn: its output's first ``<tool_call>`` names the tool
now running (the TTL policy pins the program's KV for it), and an answer without a call ends the program (the
agent answered). Any other request falls back on what its client said in the ``tether`` object
(``TurnOutcome.from_hints``). The engine calls ``outcome`` on its own thread; requests are registered and
dropped from the event loop (single dict operations, atomic under the GIL).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

from tether.runtime.engine.chat import Tool, ToolCallParseError, parse_tool_calls
from tether.runtime.engine.sequence import Sequence, TurnOutcome


class TurnOutcomes:
    def __init__(self) -> None:
        self._tools: dict[str, tuple[Tool, ...]] = {}

    def expect_tool_calls(self, request_id: str, tools: Seq[Tool]) -> None:
        """``request_id`` offered ``tools``: parse its output when it ends."""
        self._tools[request_id] = tuple(tools)

    def drop(self, request_id: str) -> None:
        self._tools.pop(request_id, None)

    def outcome(self, seq: Sequence) -> TurnOutcome:
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
