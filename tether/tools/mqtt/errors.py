"""Typed errors of MQTT tool calls; every message names the tool and the call (and the worker when known).

Errors a remote worker reports are rebuilt on the client as subclasses of the local ones, so an executor
handles them alike: ``except ToolExecutionError`` catches a remote tool's exception too, and
``except RemoteToolError`` tells the remote ones apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.tools.errors import (
    ToolArgumentError,
    ToolError,
    ToolExecutionError,
    ToolTimeoutError,
    UnknownToolError,
)

if TYPE_CHECKING:
    from tether.tools.mqtt.envelope import ErrorInfo


def _call(call_id: str | None) -> str:
    return f" (call {call_id})" if call_id else ""


class MqttToolError(ToolError):
    """Base of the errors of the MQTT transport itself (not of the tool)."""

    def __init__(self, message: str, *, tool: str | None = None, call_id: str | None = None):
        ToolError.__init__(self, message, tool=tool)  # not super(): subclasses mix in ToolTimeoutError
        self.call_id = call_id


class MqttProtocolError(MqttToolError):
    """A message or a name does not fit the wire protocol (malformed envelope, a name unusable in a topic)."""


class BrokerConnectionError(MqttToolError):
    """The broker at ``broker`` could not be reached, or the connection to it was lost (``reason`` says how)."""

    def __init__(self, broker: str, reason: str, *, tool: str | None = None, call_id: str | None = None):
        where = f" while calling tool {tool!r}{_call(call_id)}" if tool else ""
        super().__init__(f"MQTT broker {broker}{where}: {reason}", tool=tool, call_id=call_id)
        self.broker = broker
        self.reason = reason


class MqttCallTimeoutError(MqttToolError, ToolTimeoutError):
    """No result for the call within ``timeout`` seconds; ``reason`` says what was last waited for (a worker to
    come online, an ack, or the result from ``worker``) and ``attempts`` how often the call was published."""

    def __init__(
        self,
        tool: str,
        timeout: float,
        call_id: str,
        *,
        attempts: int,
        reason: str,
        worker: str | None = None,
    ):
        msg = f"tool {tool!r} timed out after {timeout:g} s{_call(call_id)}: {reason} ({attempts} attempt(s))"
        MqttToolError.__init__(self, msg, tool=tool, call_id=call_id)
        self.timeout = timeout
        self.attempts = attempts
        self.reason = reason
        self.worker = worker

    def __reduce__(self) -> tuple:
        return (
            _rebuild_timeout,
            (self.tool, self.timeout, self.call_id, self.attempts, self.reason, self.worker),
        )


def _rebuild_timeout(
    tool: str, timeout: float, call_id: str, attempts: int, reason: str, worker: str | None
) -> MqttCallTimeoutError:
    return MqttCallTimeoutError(tool, timeout, call_id, attempts=attempts, reason=reason, worker=worker)


class RemoteToolError(ToolError):
    """An error a remote worker reported for a call. ``remote_type`` is the class name on the worker,
    ``worker`` the worker's id, ``call_id`` the call; ``info`` the error as it came over the wire."""

    def __init__(self, info: ErrorInfo, *, call_id: str, worker: str | None):
        by = f" on worker {worker}" if worker else ""
        ToolError.__init__(self, f"{info.message} [remote{by}, call {call_id}]", tool=info.tool)
        self.info = info
        self.remote_type = info.type
        self.call_id = call_id
        self.worker = worker

    def __reduce__(self) -> tuple:
        return (remote_error, (self.info, self.call_id, self.worker))


class RemoteToolExecutionError(RemoteToolError, ToolExecutionError):
    """The tool raised on the worker (or the worker failed it in a way that is no other type below)."""

    def __init__(self, info: ErrorInfo, *, call_id: str, worker: str | None):
        super().__init__(info, call_id=call_id, worker=worker)
        self.cause_type = _detail(info, "cause_type", info.type)
        self.cause = _detail(info, "cause", info.message)


class RemoteToolArgumentError(RemoteToolError, ToolArgumentError):
    """The worker rejected the call's arguments (``field`` and ``reason`` as on the worker)."""

    def __init__(self, info: ErrorInfo, *, call_id: str, worker: str | None):
        super().__init__(info, call_id=call_id, worker=worker)
        self.field = _detail(info, "field", None)
        self.reason = _detail(info, "reason", info.message)


class RemoteUnknownToolError(RemoteToolError, UnknownToolError):
    """The worker that took the call does not serve this tool."""


class RemoteToolTimeoutError(RemoteToolError, ToolTimeoutError):
    """The tool timed out on the worker."""

    def __init__(self, info: ErrorInfo, *, call_id: str, worker: str | None):
        super().__init__(info, call_id=call_id, worker=worker)
        self.timeout = float(_detail(info, "timeout", 0.0))


_BY_TYPE: dict[str, type[RemoteToolError]] = {
    "ToolArgumentError": RemoteToolArgumentError,
    "UnknownToolError": RemoteUnknownToolError,
    "ToolTimeoutError": RemoteToolTimeoutError,
}


def remote_error(info: ErrorInfo, call_id: str, worker: str | None) -> RemoteToolError:
    """The client-side error for a failed result: the remote type's counterpart, else an execution error."""
    cls = _BY_TYPE.get(info.type, RemoteToolExecutionError)
    return cls(info, call_id=call_id, worker=worker)


def error_details(exc: BaseException) -> dict[str, Any]:
    """The attributes of a local tools error that its remote counterpart restores (JSON-able)."""
    if isinstance(exc, ToolArgumentError):
        return {"field": exc.field, "reason": exc.reason}
    if isinstance(exc, ToolTimeoutError):
        return {"timeout": exc.timeout}
    if isinstance(exc, ToolExecutionError):
        return {"cause_type": exc.cause_type, "cause": str(exc.cause)}
    return {}


def _detail(info: ErrorInfo, key: str, default: Any) -> Any:
    value = info.details.get(key)
    return default if value is None else value
