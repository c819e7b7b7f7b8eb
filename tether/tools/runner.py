"""``ToolRunner``: how the executor calls tools, in process (``tether.tools.local``) or on remote workers
(``tether.tools.mqtt``). The executor knows only this protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

DEFAULT_TOOL_TIMEOUT_S = 30.0
"""The per-call limit in seconds when neither the call (``timeout=``, a node's ``timeout``) nor the runner sets
one; the same for ``LocalToolRunner`` and ``MqttToolRunner``, so a tool moved to a remote worker keeps its limit."""


@runtime_checkable
class ToolRunner(Protocol):
    """Runs named tools.

    ``call`` returns the tool's typed result (what ``Tool.invoke`` returns; a remote runner turns the JSON
    reply back with ``Tool.load_result`` where it knows the tool, else returns the JSON value) or raises a
    ``tether.tools.errors.ToolError`` subclass: ``UnknownToolError``, ``ToolArgumentError``, ``ToolTimeoutError``
    (after ``timeout`` seconds; ``None`` is the runner's default, ``DEFAULT_TOOL_TIMEOUT_S`` unless the runner
    was made with another), ``ToolExecutionError``, ``ToolResultError``.
    ``call_id`` identifies the call: a runner may deliver a result only once per ``call_id``, and a retry by
    the executor uses a new one. Cancelling ``call`` abandons the call. ``close`` releases the runner's
    resources; calls after it are undefined.
    """

    async def call(
        self, tool: str, args: Mapping[str, Any], *, call_id: str, timeout: float | None = None
    ) -> Any: ...

    async def close(self) -> None: ...
