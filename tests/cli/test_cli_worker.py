"""``tether worker``'s errors: a tools module it cannot load (exit 2), a broker it cannot reach (exit 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_FILE = REPO / "tests" / "mqtt" / "remote_tools.py"


def test_worker_cli_rejects_a_missing_tools_module() -> None:
    cmd = [sys.executable, "-m", "tether.cli", "worker", "--broker", "mqtt://127.0.0.1:1"]
    done = subprocess.run(cmd + ["--tools", "no_such_tools_module"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "cannot load tools from 'no_such_tools_module'" in done.stderr


def test_worker_cli_reports_an_unreachable_broker() -> None:
    cmd = [sys.executable, "-m", "tether.cli", "worker", "--broker", "mqtt://127.0.0.1:1"]
    done = subprocess.run(cmd + ["--tools", str(TOOLS_FILE)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1
    assert "MQTT broker mqtt://127.0.0.1:1: cannot connect" in done.stderr
