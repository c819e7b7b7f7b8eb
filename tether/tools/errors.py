"""Typed errors of the tools package; every message names the tool (or file and line) at fault."""

from __future__ import annotations

from pathlib import Path


class ToolError(Exception):
    """Base class of every error raised by ``tools``.

    ``tool`` is the name of the tool at fault, or ``None`` when the error concerns no single tool.
    """

    def __init__(self, message: str, *, tool: str | None = None):
        super().__init__(message)
        self.tool = tool


class ToolStatsError(ToolError):
    """Duration statistics were fed or asked something outside their contract.

    Raised for a bad observation (negative, NaN or infinite seconds; an empty tool name), a query on an empty
    distribution, a malformed snapshot, or a malformed workload trace (then ``path`` and ``line`` say where).
    """

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        path: str | Path | None = None,
        line: int | None = None,
    ):
        super().__init__(message, tool=tool)
        self.path = None if path is None else Path(path)
        self.line = line


class ToolDefinitionError(ToolError):
    """A function cannot be made a tool (``*args``, an unresolvable annotation, a bad name), or a registry was
    given two different tools under one name."""


class ToolLoadError(ToolError):
    """A tools module (a module name or a ``.py`` path) could not be loaded; ``spec`` says which."""

    def __init__(self, spec: str, reason: str):
        super().__init__(f"cannot load tools from {spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


class UnknownToolError(ToolError):
    """No tool of this name is registered (or served)."""

    def __init__(self, tool: str, known: list[str] | None = None):
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown tool {tool!r}{hint}", tool=tool)


class ToolArgumentError(ToolError):
    """An argument failed the tool's schema. ``field`` is the argument (dotted path into nested values, or
    ``None`` when the arguments as a whole are wrong); ``reason`` says why. Never retried: the same arguments
    fail the same way."""

    def __init__(self, tool: str, field: str | None, reason: str):
        where = f"argument {field!r}" if field else "arguments"
        super().__init__(f"tool {tool!r}: {where}: {reason}", tool=tool)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str | None, str | None, str]]:
        return (type(self), (self.tool, self.field, self.reason))


class ToolTimeoutError(ToolError):
    """A call did not finish within ``timeout`` seconds (``call_id`` names the call when known)."""

    def __init__(self, tool: str, timeout: float, call_id: str | None = None):
        call = f" (call {call_id})" if call_id else ""
        super().__init__(f"tool {tool!r} timed out after {timeout:g} s{call}", tool=tool)
        self.timeout = timeout
        self.call_id = call_id

    def __reduce__(self) -> tuple[type, tuple[str | None, float, str | None]]:
        return (type(self), (self.tool, self.timeout, self.call_id))


class ToolExecutionError(ToolError):
    """The tool's own code raised. ``cause`` is the exception when it was raised in this process, or its text
    when it came from elsewhere (a remote worker); ``cause_type`` is its class name either way."""

    def __init__(
        self,
        tool: str,
        cause: BaseException | str,
        *,
        cause_type: str | None = None,
        call_id: str | None = None,
    ):
        if isinstance(cause, BaseException):
            cause_type = cause_type or type(cause).__name__
            text = str(cause)
        else:
            cause_type = cause_type or "Exception"
            text = cause
        call = f" (call {call_id})" if call_id else ""
        super().__init__(f"tool {tool!r} failed{call}: {cause_type}: {text}", tool=tool)
        self.cause = cause
        self.cause_type = cause_type
        self.call_id = call_id

    def __reduce__(self) -> tuple:
        cause = self.cause if isinstance(self.cause, str) else str(self.cause)
        return (_rebuild_execution_error, (self.tool, cause, self.cause_type, self.call_id))


def _rebuild_execution_error(
    tool: str, cause: str, cause_type: str, call_id: str | None
) -> ToolExecutionError:
    return ToolExecutionError(tool, cause, cause_type=cause_type, call_id=call_id)


class ToolResultError(ToolError):
    """A tool returned a value that does not match its return annotation."""

    def __init__(self, tool: str, reason: str):
        super().__init__(f"tool {tool!r} returned a value that fails its return type: {reason}", tool=tool)
        self.reason = reason
