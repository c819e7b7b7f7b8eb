"""Per-request sampling settings, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass

from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.structured.params import StructuredOutputs


@dataclass(frozen=True)
class SamplingParams:
    """What vLLM users expect: ``temperature == 0`` is greedy; ``top_k <= 0`` disables top-k; ``top_p == 1``
    disables nucleus sampling; ``seed`` makes one request's sampling reproducible whatever else is batched
    with it; generation stops at ``max_tokens``, an EOS id (unless ``ignore_eos``), a ``stop_token_ids`` id,
    or a ``stop`` string (the string itself is not included in the text). ``structured_outputs`` constrains the
    output to a JSON schema, regex, grammar or choice (applied as a token mask; see ``StructuredOutputs``)."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = 0
    skip_special_tokens: bool = True
    structured_outputs: StructuredOutputs | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        self._check(
            isinstance(self.max_tokens, int) and self.max_tokens > 0,
            "max_tokens",
            f"must be a positive integer, got {self.max_tokens!r}",
        )
        self._check(self.temperature >= 0.0, "temperature", f"must be >= 0, got {self.temperature}")
        self._check(0.0 < self.top_p <= 1.0, "top_p", f"must be in (0, 1], got {self.top_p}")
        self._check(
            self.top_k >= 0 or self.top_k == -1, "top_k", f"must be >= 0 (0 or -1 disables), got {self.top_k}"
        )
        self._check(
            0 <= self.min_tokens <= self.max_tokens,
            "min_tokens",
            f"must be in [0, max_tokens], got {self.min_tokens}",
        )
        self._check(all(s for s in self.stop), "stop", "stop strings must be non-empty")
        self._check(
            self.seed is None or -(2**63) <= self.seed < 2**64,
            "seed",
            f"must fit in 64 bits, got {self.seed}",
        )
        self._check(
            self.structured_outputs is None or isinstance(self.structured_outputs, StructuredOutputs),
            "structured_outputs",
            f"expected StructuredOutputs, got {type(self.structured_outputs).__name__}",
        )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def _check(self, ok: bool, name: str, why: str) -> None:
        if not ok:
            raise InvalidRequestError(None, name, why)


GREEDY = SamplingParams(temperature=0.0)
