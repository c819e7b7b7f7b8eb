"""Server processes shared by the server tests (session scope: each starts once per test run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.serve import API_KEY, serve


@pytest.fixture(scope="session")
def tiny_server() -> Iterator[str]:
    """``tether serve --model tiny`` with an API key: the protocol, errors and load tests."""
    with serve(
        "--model", "tiny", "--api-key", API_KEY, "--num-kv-blocks", "2048", "--max-model-len", "2048"
    ) as url:
        yield url


@pytest.fixture(scope="session")
def smollm2_server() -> Iterator[str]:
    """``tether serve --model smollm2``: chat, tools and the agent framework."""
    with serve("--model", "smollm2", "--num-kv-blocks", "1024", "--max-num-batched-tokens", "512") as url:
        yield url


@pytest.fixture(scope="session")
def limited_server() -> Iterator[str]:
    """``tether serve --model tiny`` with one running request, one waiting, and programs ended after 0.5 s
    idle: the queue-full test (requests without a program) and the idle-reaper test (the only program here)."""
    limits = ("--max-num-seqs", "1", "--max-num-waiting", "1", "--program-idle-timeout", "0.5")
    with serve("--model", "tiny", *limits) as url:
        yield url
