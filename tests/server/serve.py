"""A real ``tether serve`` process for the server tests: started on a free loopback port, stopped after."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from tether.runtime.bench.process import serve_process

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"


def serve(*args: str, timeout_s: float = 180.0):
    """``tether serve ARGS`` from the repository root, its run recorded in a fresh temporary folder; yields the
    ``/v1`` base URL."""
    trace_dir = tempfile.mkdtemp(prefix="tether-serve-runs-")
    return serve_process(*args, "--trace-dir", trace_dir, timeout_s=timeout_s, cwd=ROOT)


def integrity(base_url: str) -> dict:
    """``GET /integrity`` of the server at ``base_url`` (``.../v1``): raises unless the engine's check holds."""
    response = httpx.get(base_url.removesuffix("/v1") + "/integrity", timeout=30.0)
    assert response.status_code == 200, response.text
    return response.json()


def metric(base_url: str, name: str, labels: str = "") -> float:
    """One sample of ``/metrics`` (``labels`` as written there: ``state="pinned"``)."""
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=30.0).text
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise KeyError(f"{key} not in /metrics")
