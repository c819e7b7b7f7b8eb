"""A request's life on a real ``tether serve``: a client that leaves before its non-streamed answer aborts it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.server.serve import API_KEY, integrity, metric

pytestmark = pytest.mark.slow  # the session's tiny_server


def test_a_client_that_disconnects_aborts_its_non_streamed_request(tiny_server: str) -> None:
    closed = _closed(tiny_server)
    body = {"model": "tiny", "prompt": list(range(30)), "max_tokens": 1800, "ignore_eos": True}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{tiny_server}/completions", json=body, headers=headers, timeout=1.0)
    left = time.monotonic()
    while metric(tiny_server, "tether_requests_running") > 0:  # 1,800 steps would take several seconds more
        assert time.monotonic() - left < 3.0, "the abandoned request kept generating"
        time.sleep(0.05)
    assert _closed(tiny_server) == closed + 1
    integrity(tiny_server)


def _closed(url: str) -> float:
    try:
        return metric(url, "tether_requests_total", 'endpoint="/v1/completions",status="499"')
    except KeyError:
        return 0.0
