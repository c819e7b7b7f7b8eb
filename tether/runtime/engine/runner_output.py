"""``RunnerOutput``: what a runner hands back to the scheduler after one step (torch-free)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class RunnerOutput:
    """The tokens one step sampled, in batch order: one ``(request_id, token)`` per chunk that reaches its
    sequence's end (a chunk that stops inside the prompt samples nothing). A request appears at most once."""

    sampled: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if len(self._tokens) != len(self.sampled):
            ids = [rid for rid, _ in self.sampled]
            twice = next(rid for rid in ids if ids.count(rid) > 1)
            raise ValueError(f"a step samples one token per request; {twice!r} has several")

    @classmethod
    def of(cls, request_ids: Iterable[str], tokens: Iterable[int]) -> RunnerOutput:
        return cls(tuple(zip(request_ids, tokens, strict=True)))

    @cached_property
    def _tokens(self) -> dict[str, int]:
        return dict(self.sampled)

    @property
    def request_ids(self) -> tuple[str, ...]:
        return tuple(rid for rid, _ in self.sampled)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._tokens

    def __len__(self) -> int:
        return len(self.sampled)

    def token(self, request_id: str) -> int:
        """The token sampled for ``request_id``; ``KeyError`` naming it when its chunk sampled nothing."""
        try:
            return self._tokens[request_id]
        except KeyError:
            raise KeyError(f"request {request_id!r} sampled no token in this step") from None

    def replace(self, request_id: str, token: int) -> RunnerOutput:
        """A copy with ``request_id``'s token changed (it must have one)."""
        self.token(request_id)
        return RunnerOutput(tuple((rid, token if rid == request_id else t) for rid, t in self.sampled))
