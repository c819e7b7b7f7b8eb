"""A real agent framework on the server: ``examples/openai_agents_sdk.py`` (the OpenAI Agents SDK, two function
tools) against ``tether serve --model smollm2``. The SDK runs in ``.venv-agents`` (``make agents-sdk``), from a
folder outside the checkout: its import name ``agents`` is also the checkout's top-level folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.server.serve import integrity

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-agents" / "bin" / "python"


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="run `make agents-sdk` (make test does) for .venv-agents")
def test_agents_sdk_agent_calls_a_tool_and_answers(smollm2_server: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(SDK_PYTHON), str(ROOT / "examples" / "openai_agents_sdk.py"), "--base-url", smollm2_server],
        cwd=tmp_path,  # not the repository root: `agents` must be the SDK
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tool_calls"], result
    first = result["tool_calls"][0]
    assert first["tool"] in ("get_weather", "get_population")
    assert isinstance(first["arguments"]["city"], str) and first["arguments"]["city"]
    assert isinstance(result["final_output"], str) and result["final_output"].strip()
    integrity(smollm2_server)
