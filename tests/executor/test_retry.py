"""``tether.runtime.executor.retry.with_retries``: the retry loop the tool and LLM steps share."""

from __future__ import annotations

import pytest

from tether.dag.ir import RetryPolicy
from tether.runtime.executor.errors import LLMBackendError, LLMTimeoutError, NodeFailedError
from tether.runtime.executor.retry import failure_status, with_retries
from tether.tools.errors import ToolArgumentError, ToolError, ToolTimeoutError


class Flaky:
    """Raises ``errors[k - 1]`` on attempt k while there is one, then returns ``"ok"``; records the attempts."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = errors
        self.attempts: list[int] = []

    async def __call__(self, attempt: int) -> str:
        self.attempts.append(attempt)
        if attempt <= len(self.errors):
            raise self.errors[attempt - 1]
        return "ok"


async def run(policy: RetryPolicy, attempt: Flaky, **kw: object) -> str:
    return await with_retries(policy, attempt, program_id="p", node_id="n", retried=(ToolError,), **kw)  # type: ignore[arg-type]


def test_failure_status() -> None:
    assert failure_status(ToolTimeoutError("t", 1.0)) == "timeout"
    assert failure_status(LLMTimeoutError("n", 1.0)) == "timeout"
    assert failure_status(LLMBackendError("n", "boom")) == "error"
    assert failure_status(ToolError("boom", tool="t")) == "error"


async def test_retries_until_an_attempt_succeeds() -> None:
    flaky = Flaky(ToolError("a", tool="t"), ToolTimeoutError("t", 1.0))
    assert await run(RetryPolicy(attempts=3), flaky) == "ok"
    assert flaky.attempts == [1, 2, 3]


async def test_the_last_failure_is_wrapped_with_the_attempts_made() -> None:
    cause = ToolError("b", tool="t")
    flaky = Flaky(ToolError("a", tool="t"), cause)
    with pytest.raises(NodeFailedError) as info:
        await run(RetryPolicy(attempts=2), flaky)
    error = info.value
    assert (error.program_id, error.node, error.cause, error.attempts) == ("p", "n", cause, 2)
    assert error.__cause__ is cause
    assert str(error) == "program 'p': node 'n' failed after 2 attempts: ToolError: b"


async def test_a_status_not_in_on_fails_at_once() -> None:
    flaky = Flaky(ToolTimeoutError("t", 1.0))
    with pytest.raises(NodeFailedError) as info:
        await run(RetryPolicy(attempts=3, on=("error",)), flaky)
    assert (flaky.attempts, info.value.attempts) == ([1], 1)


async def test_never_retried_fails_at_once() -> None:
    flaky = Flaky(ToolArgumentError("t", "x", "bad"))
    with pytest.raises(NodeFailedError):
        await run(RetryPolicy(attempts=3), flaky, never=(ToolArgumentError,))
    assert flaky.attempts == [1]


async def test_other_exceptions_propagate_unwrapped() -> None:
    flaky = Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        await run(RetryPolicy(attempts=3), flaky)
    assert flaky.attempts == [1]


async def test_sleeps_the_backoff_before_each_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("tether.runtime.executor.retry.asyncio.sleep", sleep)
    flaky = Flaky(ToolError("a", tool="t"), ToolError("b", tool="t"))
    assert await run(RetryPolicy(attempts=3, backoff_s=0.5, backoff_factor=2.0), flaky) == "ok"
    assert slept == [0.5, 1.0]
