"""The program router in front of two real ``tether serve`` processes (OpenAI-compatible servers it does not run):
each program's turns land where its prefix is cached, and its end releases its pins there."""

from __future__ import annotations

import pytest

from tests.server.serve import API_KEY, integrity, metric, serve
from tether.dag.compiler import LLMHints
from tether.runtime.cluster.routers import get_router
from tether.runtime.executor.backends.openai import OpenAIBackend
from tether.runtime.executor.backends.routed import RoutedBackend
from tether.runtime.executor.llm import LLMRequest

pytestmark = pytest.mark.slow  # a second `tether serve` process (the first is the session's tiny_server)


async def test_each_programs_turns_hit_their_servers_cache(tiny_server: str) -> None:
    args = ("--model", "tiny", "--api-key", API_KEY, "--num-kv-blocks", "2048", "--max-model-len", "2048")
    with serve(*args) as second:
        servers = {url: OpenAIBackend(url, "tiny", api_key=API_KEY) for url in (tiny_server, second)}
        routed = RoutedBackend(servers, get_router("program"))
        cached = []
        for p in range(4):
            prompt = f"program {p} " * 20
            for turn in range(3):
                hints = LLMHints(turn=turn, next_tools=("search",))
                request = LLMRequest(f"routed/{p}", f"n{turn}", prompt=prompt, max_tokens=3, hints=hints)
                result = await routed.complete(request)
                if turn:
                    cached.append(result.cached_tokens)
                prompt += result.text + f" turn {turn} " * 4
        assert all(c > 0 for c in cached), cached  # every later turn found its program's prefix cached
        assert sum(metric(url, "tether_kv_blocks", 'state="pinned"') for url in servers) > 0
        for p in range(4):
            await routed.end_program(f"routed/{p}")
        for url in servers:
            assert metric(url, "tether_kv_blocks", 'state="pinned"') == 0
            integrity(url)
        await routed.close()
