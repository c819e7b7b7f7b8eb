"""``Sequence``: the one request state object that crosses the scheduler / model-runner boundary.

``ProgramHints`` and ``TurnOutcome`` (``tether.hints``, re-exported here) are the hints types the engine and the
server use."""

from __future__ import annotations

import enum
import time

from tether.hints import ProgramHints, TurnOutcome  # noqa: F401 - re-exported
from tether.kvcache import PrefixMatch
from tether.runtime.engine.sampling_params import SamplingParams


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class FinishReason(str, enum.Enum):
    STOP = "stop"  # EOS, a stop token id or a stop string
    LENGTH = "length"  # max_tokens or the model's context
    ABORT = "abort"  # cancelled by the caller
    ERROR = "error"  # the step that ran it failed


class Sequence:
    """Tokens, progress and cache placement of one request.

    The one rule of the scheduler: ``num_computed_tokens`` catches up to ``num_tokens``. A prefill, a chunk of
    one, a prefix-cache hit (computed tokens jump ahead) and a decode step are the same thing.
    """

    def __init__(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        params: SamplingParams,
        *,
        prompt: str | None = None,
        arrival_time: float | None = None,
        hints: ProgramHints | None = None,
        seed: int | None = None,
        seq_index: int = 0,
    ) -> None:
        self.request_id = request_id
        self.seq_index = seq_index  # engine-wide submission counter: the FCFS tie-break
        self.prompt = prompt
        self.prompt_token_ids = list(prompt_token_ids)
        self.prompt_token_ids_tuple = tuple(self.prompt_token_ids)  # shared by every output snapshot
        self.output_token_ids: list[int] = []
        self.token_ids: list[int] = list(prompt_token_ids)  # prompt + output, grown in place
        self.params = params
        self.hints = hints or ProgramHints()
        self.seed = seed  # a sampled request's generator seed (the runner's sampler owns the generator)
        self.arrival_time = time.monotonic() if arrival_time is None else arrival_time
        self.status = SequenceStatus.WAITING
        self.finish_reason: FinishReason | None = None
        self.num_computed_tokens = 0
        self.num_cached_tokens = 0  # prompt tokens served by the prefix cache at first admission
        self.num_preemptions = 0
        self.admitted = False
        self.last_match: PrefixMatch | None = None  # the latest prefix match, extended while it waits
        self.output_text = ""
        self.admitted_time: float | None = None  # the start of the step that first ran it
        self.first_token_time: float | None = None
        self.finish_time: float | None = None
        self.error: BaseException | None = None

    def append_token(self, token_id: int) -> None:
        self.output_token_ids.append(token_id)
        self.token_ids.append(token_id)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)

    @property
    def num_uncomputed_tokens(self) -> int:
        return self.num_tokens - self.num_computed_tokens

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    def __repr__(self) -> str:
        return (
            f"Sequence({self.request_id!r}, {self.status.value}, tokens={self.num_tokens}, "
            f"computed={self.num_computed_tokens})"
        )
