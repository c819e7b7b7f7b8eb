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
