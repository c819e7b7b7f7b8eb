"""One ``tether serve --model smollm2`` per policy, shared by the framework adapters' tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.scenario import MODEL, NUM_KV_BLOCKS, PolicyServer
from tests.server.serve import ROOT
from tether.runtime.bench.process import serve_process


@pytest.fixture(scope="module", params=["tether", "vllm"])
def policy_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PolicyServer]:
    """``tether serve --model smollm2 --policy P`` with ``NUM_KV_BLOCKS`` KV blocks, eager, its run traced."""
    policy = request.param
    trace_dir = tmp_path_factory.mktemp(f"runs-{policy}")
    args = ("--model", MODEL, "--policy", policy, "--enforce-eager", "--num-kv-blocks", str(NUM_KV_BLOCKS))
    with serve_process(*args, "--trace-dir", str(trace_dir), cwd=ROOT) as url:
        yield PolicyServer(url, policy, trace_dir)
