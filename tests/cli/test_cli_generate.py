from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test runs `tether` in a subprocess that loads a model (SmolLM2 in one)


def tether(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_generate_json():
    r = tether(
        "generate", "--model", "tiny", "--prompt", "hello", "--max-tokens", "5", "--ignore-eos", "--json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "tiny" and doc["prompt"] == "hello"
    assert doc["prompt_tokens"] == 6 and doc["completion_tokens"] == 5 and len(doc["token_ids"]) == 5
    assert doc["finish_reason"] == "length" and isinstance(doc["text"], str)


def test_generate_bad_max_tokens_exits_nonzero_naming_the_field():
    r = tether("generate", "--model", "tiny", "--prompt", "hello", "--max-tokens", "0")
    assert r.returncode == 2 and "max_tokens" in r.stderr and not r.stdout


def test_generate_unknown_model_path(tmp_path):
    r = tether("generate", "--model", str(tmp_path / "missing"), "--prompt", "hello")
    assert r.returncode == 2 and "missing" in r.stderr


def test_chat_forced_tool_call_with_smollm2_prints_parsed_arguments():
    r = tether(
        "chat", "--model", "smollm2", "--message", "What's the weather like in Paris today?",
        "--tools", "examples/tools/weather.json", "--tool-choice", "get_weather", "--json",
        "--num-kv-blocks", "64",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["finish_reason"] == "stop" and doc["content"] is None
    [call] = doc["tool_calls"]
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    assert isinstance(call["arguments"]["city"], str) and call["arguments"]["unit"] in (
        "celsius",
        "fahrenheit",
    )


def test_chat_unknown_forced_tool_names_the_field():
    r = tether(
        "chat", "--model", "tiny", "--message", "hi", "--tools", "examples/tools/weather.json",
        "--tool-choice", "no_such_tool",
    )  # fmt: skip
    assert r.returncode == 2 and "tool_choice" in r.stderr and not r.stdout
