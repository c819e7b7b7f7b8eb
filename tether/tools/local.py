"""``LocalToolRunner``: tools run in this process (async tools on the event loop, sync tools in the tool
thread pool), with per-tool concurrency limits and duration statistics for the scheduler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from tether.tools.durations import ToolDurationStats
from tether.tools.errors import ToolTimeoutError
from tether.tools.registry import ToolRegistry, default_registry
from tether.tools.runner import DEFAULT_TOOL_TIMEOUT_S
from tether.tools.tool import Tool


class LocalToolRunner:
    """Implements ``tether.tools.runner.ToolRunner`` over a registry.

    Rules: a tool with ``max_concurrency = n`` runs at most ``n`` calls at once in this runner (the rest wait
    in arrival order; waiting does not count against the timeout, which bounds the run itself); a call's
    ``timeout=None`` means the runner's ``timeout`` (``DEFAULT_TOOL_TIMEOUT_S``, as for remote tools; ``None``
    here: no limit); the duration
    of each call that returns is observed into ``stats``. A timed-out sync tool's thread cannot be stopped: it
    runs on, and its result is dropped.
    """

    def __init__(
        self,
        registry: ToolRegistry | None = None,
        stats: ToolDurationStats | None = None,
        *,
        timeout: float | None = DEFAULT_TOOL_TIMEOUT_S,
    ) -> None:
        self.registry = registry if registry is not None else default_registry
        self.stats = stats
        self.timeout = timeout
        self._limits: dict[str, asyncio.Semaphore] = {}
        self.calls = 0

    async def call(
        self, tool: str, args: Mapping[str, Any], *, call_id: str, timeout: float | None = None
    ) -> Any:
        t = self.registry.get(tool)
        timeout = self.timeout if timeout is None else timeout
        limit = self._limit(t)
        if limit is None:
            return await self._run(t, args, call_id, timeout)
        async with limit:
            return await self._run(t, args, call_id, timeout)

    async def _run(self, t: Tool, args: Mapping[str, Any], call_id: str, timeout: float | None) -> Any:
        self.calls += 1
        start = time.perf_counter()
        if timeout is None:
            result = await t.invoke(args)
        else:
            try:
                result = await asyncio.wait_for(t.invoke(args), timeout)
            except asyncio.TimeoutError:
                raise ToolTimeoutError(t.name, timeout, call_id) from None
        if self.stats is not None:
            self.stats.observe(t.name, time.perf_counter() - start)
        return result

    def _limit(self, t: Tool) -> asyncio.Semaphore | None:
        if t.max_concurrency is None:
            return None
        sem = self._limits.get(t.name)
        if sem is None:
            sem = self._limits[t.name] = asyncio.Semaphore(t.max_concurrency)
        return sem

    async def close(self) -> None:
        self._limits.clear()
