"""Three more real clients on the server, as users run them: ``examples/openai_client.py`` (the ``openai`` SDK:
plain, streamed, tool and json_schema turns of one session, and an error object), ``examples/langgraph_agent.py``
(LangGraph with langchain-openai) and ``examples/pydantic_ai_agent.py`` (pydantic-ai with structured output),
each against ``tether serve --model smollm2`` in its own process. The OpenAI Agents SDK has its own file
(test_openai_agents_sdk.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.serve import integrity

pytestmark = pytest.mark.slow  # a `tether serve --model smollm2` process and each example in a subprocess

ROOT = Path(__file__).resolve().parents[2]


def run_example(script: str, base_url: str, home: Path) -> dict:
    out = subprocess.run(
        [sys.executable, f"examples/{script}", "--base-url", base_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_openai_sdk_chat_stream_tools_schema_and_errors(smollm2_server: str, tmp_path: Path) -> None:
    result = run_example("openai_client.py", smollm2_server, tmp_path)
    assert result["plain"]["text"].strip() and result["plain"]["usage"]["completion_tokens"] > 0
    assert result["streamed"]["chunks"] > 1 and result["streamed"]["text"].strip()
    call = result["tool_call"]
    assert call["name"] == "get_weather" and call["finish_reason"] == "tool_calls"
    assert isinstance(call["arguments"]["city"], str) and call["arguments"]["city"]
    assert set(result["structured"]) == {"name", "country"}
    assert result["cached_tokens"] > 0  # the session's earlier turns were reused
    assert result["error"]["status"] == 400 and result["error"]["body"]["param"] == "messages[0].content"
    integrity(smollm2_server)


def test_langgraph_graph_calls_a_tool_and_answers(smollm2_server: str, tmp_path: Path) -> None:
    result = run_example("langgraph_agent.py", smollm2_server, tmp_path)
    assert result["roles"] == ["system", "human", "ai", "tool", "ai"]
    first = result["tool_calls"][0]
    assert first["tool"] in ("get_weather", "get_population")
    assert isinstance(first["arguments"]["city"], str) and first["arguments"]["city"]
    assert isinstance(result["final_output"], str) and result["final_output"].strip()
    integrity(smollm2_server)


def test_pydantic_ai_agent_returns_a_validated_output(smollm2_server: str, tmp_path: Path) -> None:
    result = run_example("pydantic_ai_agent.py", smollm2_server, tmp_path)
    output = result["output"]
    assert set(output) == {"city", "country"} and all(isinstance(v, str) and v for v in output.values())
    assert 1 <= result["requests"] <= 6
    integrity(smollm2_server)
