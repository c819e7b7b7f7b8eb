"""``RunnerOutput``: one token per sampling request, looked up by request id."""

from __future__ import annotations

import pytest

from tether.runtime.engine.runner_output import RunnerOutput


def test_lookup_in_batch_order() -> None:
    out = RunnerOutput.of(["b", "a"], [7, 3])
    assert out.sampled == (("b", 7), ("a", 3)) and out.request_ids == ("b", "a")
    assert out.token("a") == 3 and "b" in out and "c" not in out and len(out) == 2


def test_a_request_without_a_token_is_named() -> None:
    with pytest.raises(KeyError, match="'c' sampled no token"):
        RunnerOutput.of(["a"], [1]).token("c")


def test_one_token_per_request() -> None:
    with pytest.raises(ValueError, match="'a' has several"):
        RunnerOutput((("a", 1), ("b", 2), ("a", 3)))


def test_replace_changes_one_token() -> None:
    out = RunnerOutput.of(["a", "b"], [1, 2])
    assert out.replace("b", 9).sampled == (("a", 1), ("b", 9)) and out.token("b") == 2
    with pytest.raises(KeyError):
        out.replace("c", 0)
