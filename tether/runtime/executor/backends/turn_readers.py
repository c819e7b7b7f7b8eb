"""``TurnReaders``: what a finished turn of an in-process program says, for the local engine's program layer (the
engine's ``turn_outcome``), so the pin it makes during the tool that follows is priced with that tool's duration
statistics.

The server's ``TurnOutcomes`` parses the tool calls of the chat requests it serves; in process the executor's
requests carry their own reader (``LLMRequest.outcome``: a streamed plan names the tools it dispatched, a ReAct
turn its action, else the call's hints as they are when the turn ends). The backend registers it by request id
when it submits the request (``expect``) and drops it once the request is over (``drop``); the engine calls
``outcome`` on its own thread when the turn ends (single dict operations: atomic under the GIL). A request
that offered tools is first read for a ``<tool_call>`` block, as the server reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence as Seq
from typing import Any

from tether.hints import OutcomeReader, TurnOutcome
from tether.runtime.engine.chat import ToolCallParseError, parse_tool_calls
from tether.runtime.engine.sequence import Sequence

log = logging.getLogger(__name__)


class TurnReaders:
    """The engine's ``turn_outcome``: a registered request's reader, else ``fallback`` (default: the request's
    hints, ``TurnOutcome.from_hints``). A reader that raises or returns ``None`` falls back too."""

    def __init__(self, fallback: Callable[[Sequence], TurnOutcome] | None = None) -> None:
        self.fallback = fallback or (lambda seq: TurnOutcome.from_hints(seq.hints))
        self._readers: dict[str, OutcomeReader] = {}

    def expect(self, request_id: str, reader: OutcomeReader) -> None:
        self._readers[request_id] = reader

    def drop(self, request_id: str) -> None:
        self._readers.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._readers)

    def outcome(self, seq: Sequence) -> TurnOutcome:
        reader = self._readers.pop(seq.request_id, None)
        if reader is not None:
            try:
                said = reader(seq.output_text)
            except Exception:  # noqa: BLE001 - a reader's bug must not stop the engine's step
                log.exception("reading the outcome of %s failed", seq.request_id)
                said = None
            if said is not None:
                return said
        return self.fallback(seq)


def request_reader(tools: Seq[dict[str, Any]], own: OutcomeReader | None) -> OutcomeReader | None:
    """The reader of a request offered ``tools`` (OpenAI function specs) whose caller reads its replies with
    ``own``: the first ``<tool_call>`` block's tool, else what ``own`` says. ``None`` when neither reads."""
    if not tools:
        return own
    offered = list(tools)

    def read(text: str) -> TurnOutcome | None:
        try:
            calls = parse_tool_calls(text, offered).tool_calls
        except ToolCallParseError:
            calls = []
        if calls:
            return TurnOutcome(calls[0].name, last_turn=False)
        return own(text) if own is not None else None

    return read
