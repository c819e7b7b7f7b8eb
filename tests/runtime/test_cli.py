from __future__ import annotations

import json
import subprocess
import sys


def tether(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, timeout=120
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
