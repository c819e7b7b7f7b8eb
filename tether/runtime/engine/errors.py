"""Typed errors of the engine. Each names what is wrong (path, tensor, request, field) and why."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelLoadError(EngineError):
    """A model could not be loaded: unknown path, missing config or weights, unsupported architecture."""


class InvalidRequestError(EngineError, ValueError):
    """A request field is invalid; ``request_id`` and ``field`` say which."""

    def __init__(self, request_id: str, field: str, reason: str) -> None:
        super().__init__(f"request {request_id!r}: invalid {field!r}: {reason}")
        self.request_id = request_id
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.request_id, self.field, self.reason))


class StructuredOutputError(EngineError):
    """A structured request's grammar matcher rejected a sampled token or could not follow the request's
    output (a bug: the mask should have forbidden the token). The request fails; the engine goes on."""

    def __init__(self, request_id: str, reason: str) -> None:
        super().__init__(f"request {request_id!r}: structured output: {reason}")
        self.request_id = request_id
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.request_id, self.reason))


class QueueFullError(EngineError):
    """The engine's waiting queue holds ``max_num_waiting`` requests: this one is refused, nothing changes (a
    server answers 503 with ``Retry-After``)."""

    def __init__(self, request_id: str, num_waiting: int) -> None:
        super().__init__(f"request {request_id!r}: the waiting queue is full ({num_waiting} requests waiting)")
        self.request_id = request_id
        self.num_waiting = num_waiting

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return (type(self), (self.request_id, self.num_waiting))
