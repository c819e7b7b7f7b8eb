"""When a sequence is done after its newest token: its grammar must accept the token (else the request fails),
then the stop conditions (``StopChecker``). The scheduler asks in ``update``, as vLLM's
``update_from_output`` does, and forgets a request's state when it finishes."""

from __future__ import annotations

from tether.runtime.engine.sequence import FinishReason, Sequence
from tether.runtime.engine.stop import StopChecker
from tether.runtime.engine.structured.manager import StructuredOutputManager


class OutputChecks:
    def __init__(self, stop: StopChecker, structured: StructuredOutputManager) -> None:
        self.stop = stop
        self.structured = structured

    def check(self, seq: Sequence) -> FinishReason | None:
        """``ERROR`` (with ``seq.error`` set) when the grammar rejects the token; else the stop reason or
        ``None``."""
        rejected = self.structured.advance(seq)
        if rejected is not None:
            seq.error = rejected
            return FinishReason.ERROR
        return self.stop.check(seq)

    def forget(self, request_id: str) -> None:
        self.stop.forget(request_id)
        self.structured.drop(request_id)
