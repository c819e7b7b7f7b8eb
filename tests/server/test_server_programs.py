"""Program identity over HTTP: pins across turns, ``/v1/programs/{id}/end``, the idle reaper, and a load of 32
concurrent sessions with nothing leaked afterwards."""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import httpx
import openai
import pytest

from tests.server.serve import API_KEY, integrity, metric

pytestmark = pytest.mark.slow  # `tether serve` processes (tiny_server, limited_server)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def turn(url: str, pid_field: dict, prompt: list[int], headers: dict | None = None) -> dict:
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 4, "temperature": 0, **pid_field}
    response = httpx.post(f"{url}/completions", json=body, headers={**AUTH, **(headers or {})}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_identity_field_names_the_program_and_end_releases_its_pin(tiny_server: str) -> None:
    prompt = list(range(40, 90))  # three full blocks
    for i, (field, headers) in enumerate(
        (
            ({"session_id": "p-session"}, None),
            ({"prompt_cache_key": "p-cache-key"}, None),
            ({}, {"X-Session-Id": "p/header"}),
            ({"tether": {"program_id": "p-tether", "turn": 0}}, None),
        )
    ):
        ids = [i + 1, *prompt]
        first = turn(tiny_server, field, ids, headers)
        assert metric(tiny_server, "tether_kv_blocks", 'state="pinned"') >= 3  # pinned across the pause
        second = turn(tiny_server, field, ids + [7] * 20, headers)
        assert second["usage"]["prompt_tokens_details"]["cached_tokens"] >= 48
        assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
        pid = (field.get("tether") or {}).get("program_id") or field.get("session_id")
        pid = pid or field.get("prompt_cache_key") or (headers or {}).get("X-Session-Id")
        end = httpx.post(f"{tiny_server}/programs/{urllib.parse.quote(pid, safe='')}/end", headers=AUTH)
        assert end.status_code == 200 and end.json() == {
            "id": pid,
            "object": "program",
            "ended": True,
            "known": True,
        }
        assert metric(tiny_server, "tether_kv_blocks", 'state="pinned"') == 0
    report = integrity(tiny_server)
    assert report["kv_blocks"]["pinned"] == 0


def test_ending_an_unknown_program_is_harmless(tiny_server: str) -> None:
    end = httpx.post(f"{tiny_server}/programs/nobody/end", headers=AUTH)
    assert end.status_code == 200 and end.json()["known"] is False
    integrity(tiny_server)


def test_idle_programs_are_ended(limited_server: str) -> None:
    url = limited_server
    body = {"model": "tiny", "prompt": list(range(40, 90)), "max_tokens": 2, "session_id": "quiet"}
    assert httpx.post(f"{url}/completions", json=body, timeout=60).status_code == 200
    assert metric(url, "tether_kv_blocks", 'state="pinned"') > 0
    deadline = time.monotonic() + 10
    while metric(url, "tether_kv_blocks", 'state="pinned"') > 0:
        assert time.monotonic() < deadline, "the idle program kept its pin"
        time.sleep(0.1)
    assert metric(url, "tether_programs_ended_total", 'reason="idle"') == 1
    assert metric(url, "tether_programs") == 0
    integrity(url)


async def test_32_concurrent_sessions_of_5_turns(tiny_server: str) -> None:
    client = openai.AsyncOpenAI(base_url=tiny_server, api_key=API_KEY, max_retries=0)

    async def session(i: int) -> list[int]:
        messages = [{"role": "user", "content": f"session {i}: tell me something"}]
        cached = []
        for k in range(5):
            out = await client.chat.completions.create(
                model="tiny",
                messages=messages,
                max_tokens=8,
                temperature=0.7,
                seed=i * 10 + k,
                extra_body={"session_id": f"load-{i}"},
            )
            assert out.choices[0].finish_reason in ("stop", "length")
            cached.append(out.usage.prompt_tokens_details.cached_tokens)
            messages += [
                {"role": "assistant", "content": out.choices[0].message.content},
                {"role": "user", "content": f"turn {k + 1}"},
            ]
        return cached

    results = await asyncio.gather(*(session(i) for i in range(32)))
    assert len(results) == 32 and all(len(r) == 5 for r in results)
    assert all(r[-1] > 0 for r in results)  # later turns reuse their session's prefix
    await client.close()
    async with httpx.AsyncClient(headers=AUTH) as http:
        for i in range(32):
            assert (await http.post(f"{tiny_server}/programs/load-{i}/end")).status_code == 200
    report = integrity(tiny_server)
    assert report["kv_blocks"]["used"] == 0 and report["kv_blocks"]["pinned"] == 0


async def test_openai_backend_sends_hints_to_a_tether_server_and_ends_programs(tiny_server: str) -> None:
    from tether.dag.compiler import LLMHints
    from tether.runtime.executor.backends.openai import OpenAIBackend
    from tether.runtime.executor.llm import LLMRequest

    backend = OpenAIBackend(tiny_server, "tiny", api_key=API_KEY)
    request = LLMRequest(
        "backend/prog",
        "n1",
        prompt="x" * 70,
        max_tokens=3,
        hints=LLMHints(turn=0, remaining_turns=1, next_tools=("search",)),
    )
    result = await backend.complete(request)
    assert backend.tether_server is True  # found from /models
    assert backend.request_body(request)["tether"] == {
        "program_id": "backend/prog",
        "turn": 0,
        "next_tools": ["search"],
        "remaining_turns": 1,
    }  # ProgramHints.to_wire(): what is set, defaults left out
    assert result.completion_tokens == 3
    assert metric(tiny_server, "tether_kv_blocks", 'state="pinned"') > 0  # pinned for "search"
    await backend.end_program("backend/prog")
    assert metric(tiny_server, "tether_kv_blocks", 'state="pinned"') == 0
    await backend.close()
    integrity(tiny_server)
