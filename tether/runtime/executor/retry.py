"""The retry loop of one node's call (a tool call or an LLM call) under its ``RetryPolicy``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from tether.dag.ir import RetryPolicy
from tether.runtime.executor.errors import LLMTimeoutError, NodeFailedError
from tether.tools.errors import ToolTimeoutError

T = TypeVar("T")

TIMEOUTS = (ToolTimeoutError, LLMTimeoutError)


def failure_status(exc: BaseException) -> Literal["timeout", "error"]:
    """How ``RetryPolicy.on`` names a failed attempt: ``"timeout"`` for a tool or LLM timeout, else ``"error"``."""
    return "timeout" if isinstance(exc, TIMEOUTS) else "error"


async def with_retries(
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    program_id: str,
    node_id: str,
    retried: tuple[type[BaseException], ...],
    never: tuple[type[BaseException], ...] = (),
) -> T:
    """Await ``attempt(k)`` for k = 1, 2, ... up to ``policy.attempts``, sleeping ``policy.delay_before(k)``
    first when it is positive; return the first value an attempt returns.

    An attempt that raises one of ``retried`` is tried again when its ``failure_status`` is in ``policy.on``,
    it is none of ``never`` and attempts remain; otherwise the node fails with
    ``NodeFailedError(program_id, node_id, exc, k)`` (raised from ``exc``). Any other exception propagates at
    once, unwrapped. The loop emits nothing: ``attempt`` reports its own outcome (its trace event)."""
    for k in range(1, policy.attempts + 1):
        delay = policy.delay_before(k)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await attempt(k)
        except retried as exc:
            if isinstance(exc, never) or failure_status(exc) not in policy.on or k == policy.attempts:
                raise NodeFailedError(program_id, node_id, exc, k) from exc
    raise AssertionError("unreachable: RetryPolicy.attempts >= 1")
