"""JSON messages exchanged by tool clients and workers over MQTT.

Every message is a frozen pydantic model serialised as one JSON object per MQTT payload:

- ``CallEnvelope``   client -> worker: run ``tool`` on ``args``; answer on ``reply_to``.
- ``AckEnvelope``    worker -> client: "I (``worker``) took ``call_id`` (attempt ``attempt``)".
- ``ResultEnvelope`` worker -> client: the outcome, ``result`` when ``ok`` else ``error``.
- ``WorkerStatus``   worker -> everyone (retained): online and serving ``tools``, or offline (the worker's
  last will, which the broker publishes when its connection drops). An empty payload clears the retained
  status of a worker that left cleanly and counts as offline too.

Acks and results share the reply topic; ``kind`` tells them apart (``decode_reply``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from tether.tools.mqtt.errors import MqttProtocolError

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class CallEnvelope(BaseModel):
    """One tool call on the wire.

    ``call_id`` identifies one execution: a worker that sees a ``call_id`` (from the same ``reply_to``) it has
    already completed re-sends the cached result instead of running the tool again. ``deadline`` is a Unix
    time (seconds) after which no worker starts the call; ``attempt`` counts publications of this call (1 for
    the first, +1 each time the client re-publishes it because its worker died or never acknowledged it).
    """

    model_config = _FROZEN

    call_id: str = Field(min_length=1)
    tool: str = Field(min_length=1)
    args: dict[str, Any]
    reply_to: str = Field(min_length=1)
    deadline: float | None = None
    attempt: int = Field(default=1, ge=1)


class ErrorInfo(BaseModel):
    """A failed call: ``type`` is the error's class name (``ToolExecutionError``, ...), ``tool`` the tool,
    ``message`` the error's text (it names the tool). ``details`` holds what the client needs to rebuild the
    typed error: ``field``/``reason`` (argument errors), ``cause_type``/``cause`` (execution errors),
    ``timeout`` (timeouts)."""

    model_config = _FROZEN

    type: str
    message: str
    tool: str
    details: dict[str, Any] = Field(default_factory=dict)


class ResultEnvelope(BaseModel):
    """The outcome of one call: exactly one of ``result`` (when ``ok``) and ``error`` (otherwise) is set."""

    model_config = _FROZEN

    kind: Literal["result"] = "result"
    call_id: str = Field(min_length=1)
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None
    worker: str | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> ResultEnvelope:
        if self.ok and self.error is not None:
            raise ValueError("a successful result carries no error")
        if not self.ok and self.error is None:
            raise ValueError("a failed result must carry an error")
        return self


class AckEnvelope(BaseModel):
    """A worker took a call: from now on the client watches that worker's liveness for it."""

    model_config = _FROZEN

    kind: Literal["ack"] = "ack"
    call_id: str = Field(min_length=1)
    worker: str = Field(min_length=1)
    attempt: int = Field(default=1, ge=1)


class WorkerStatus(BaseModel):
    """A worker's state, retained on its status topic. Online: it serves ``tools`` on its direct topic and,
    when ``shared``, on the per-tool shared subscriptions of ``group``. Offline: its last will (the broker
    publishes it when the worker's connection drops) or its goodbye."""

    model_config = _FROZEN

    worker_id: str = Field(min_length=1)
    state: Literal["online", "offline"] = "online"
    tools: tuple[str, ...] = ()
    shared: bool = False
    group: str = "tether"
    pid: int | None = None
    host: str | None = None


Reply = Annotated[AckEnvelope | ResultEnvelope, Field(discriminator="kind")]
_REPLY = TypeAdapter(Reply)


def encode(message: BaseModel) -> bytes:
    """The UTF-8 JSON payload of ``message``."""
    return message.model_dump_json().encode()


def decode_call(payload: bytes) -> CallEnvelope:
    """Parse a call; raises ``MqttProtocolError`` naming what is wrong."""
    try:
        return CallEnvelope.model_validate_json(payload)
    except ValidationError as exc:
        raise MqttProtocolError(f"malformed tool call envelope: {_first_error(exc)}") from exc


def decode_reply(payload: bytes) -> AckEnvelope | ResultEnvelope:
    """Parse an ack or a result; raises ``MqttProtocolError`` naming what is wrong."""
    try:
        return _REPLY.validate_json(payload)
    except ValidationError as exc:
        raise MqttProtocolError(f"malformed tool reply envelope: {_first_error(exc)}") from exc


def decode_status(payload: bytes) -> WorkerStatus | None:
    """Parse a worker status: ``None`` when the worker is offline (an offline status, or an empty payload,
    which clears a retained status)."""
    if not payload:
        return None
    try:
        status = WorkerStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise MqttProtocolError(f"malformed worker status: {_first_error(exc)}") from exc
    return status if status.state == "online" else None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"
