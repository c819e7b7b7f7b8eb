"""What a request returns: the shapes vLLM users know."""

from __future__ import annotations

from dataclasses import dataclass

from tether.runtime.engine.sequence import Sequence


@dataclass(frozen=True)
class CompletionOutput:
    index: int
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str | None


@dataclass(frozen=True)
class RequestMetrics:
    arrival_time: float
    first_token_time: float | None
    finish_time: float | None
    num_preemptions: int
    admitted_time: float | None = None  # the start of the step that first ran it

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_time is None else self.first_token_time - self.arrival_time

    @property
    def queued(self) -> float | None:
        """Seconds from arrival to the first step that ran the request."""
        return None if self.admitted_time is None else max(0.0, self.admitted_time - self.arrival_time)


@dataclass(frozen=True)
class RequestOutput:
    """A snapshot of one request: everything generated so far; ``finished`` once it is done.
    ``num_cached_tokens``: prompt tokens served from the prefix cache when the request was first admitted.
    ``error``: set when the step that ran the request failed (``finish_reason == "error"``)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: tuple[int, ...]
    outputs: tuple[CompletionOutput, ...]
    finished: bool
    num_cached_tokens: int
    metrics: RequestMetrics
    error: str | None = None

    @classmethod
    def of(cls, seq: Sequence) -> RequestOutput:
        reason = seq.finish_reason.value if seq.finish_reason is not None else None
        return cls(
            request_id=seq.request_id,
            prompt=seq.prompt,
            prompt_token_ids=seq.prompt_token_ids_tuple,
            outputs=(CompletionOutput(0, seq.output_text, tuple(seq.output_token_ids), reason),),
            finished=seq.is_finished,
            num_cached_tokens=seq.num_cached_tokens,
            metrics=RequestMetrics(
                seq.arrival_time,
                seq.first_token_time,
                seq.finish_time,
                seq.num_preemptions,
                seq.admitted_time,
            ),
            error=None if seq.error is None else f"{type(seq.error).__name__}: {seq.error}",
        )
