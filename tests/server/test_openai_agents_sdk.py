"""A real agent framework on the server: ``examples/openai_agents_sdk.py`` (the OpenAI Agents SDK, two function
tools) against ``tether serve --model smollm2``. The SDK is a test dependency of the main environment and the
example runs from the repository root: its import name ``agents`` is also the name of Tether's front-end package,
which lives only under ``tether/`` (no top-level folder shadows an installed package, tests/install/test_layout.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.serve import integrity

pytestmark = pytest.mark.slow  # a `tether serve --model smollm2` process and the SDK example in a subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_agents_sdk_agent_calls_a_tool_and_answers(smollm2_server: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "examples/openai_agents_sdk.py", "--base-url", smollm2_server],
        cwd=ROOT,  # the repository root, first on sys.path: `agents` must still be the SDK
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
