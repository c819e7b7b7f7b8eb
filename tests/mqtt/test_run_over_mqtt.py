"""``tether run --broker`` against a real mosquitto with two ``tether worker`` processes sharing the load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mqtt.conftest import REPO, TOOLS_FILE, wait_until
from tether.runtime.tracing import read_trace
from tether.tools.mqtt import MqttToolRunner

pytestmark = pytest.mark.slow  # mosquitto, two `tether worker` processes and `tether run` in a subprocess

NODES = 6


def _workflow(path: Path) -> Path:
    lines = ["name: mqtt_fanout", "tools:", f"  - {TOOLS_FILE}", "nodes:"]
    for i in range(NODES):
        lines += [f"  - id: s{i}", "    tool: slow", "    args: {seconds: 0.3}"]
    lines += [
        "  - id: total",
        "    tool: add",
        "    args:",
        "      a: ${s0.output}",
        "      b: 0",
        "outputs:",
    ]
    lines += [f"  p{i}: ${{s{i}.output}}" for i in range(NODES)]
    lines += ["  total: ${total.output}"]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_tether_run_with_two_workers_on_mosquitto(
    mosquitto, spawn_worker: Callable[[str, str], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    workers = [spawn_worker(mosquitto.url, f"w-{i}") for i in range(2)]
    async with MqttToolRunner(mosquitto.url) as probe:
        await wait_until(lambda: len(probe.roster.serving("slow")) == 2, what="both workers online")
        assert all(w.shared for w in probe.roster.workers())
    cmd = [sys.executable, "-m", "tether.cli", "run", str(_workflow(tmp_path / "fanout.yaml"))]
    cmd += ["--broker", mosquitto.url, "--json", "--trace-dir", str(tmp_path)]
    env = {**os.environ, "TETHER_HOME": str(tmp_path / "home")}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    outputs = doc["outputs"]
    pids = [outputs[f"p{i}"] for i in range(NODES)]
    assert set(pids) == {w.pid for w in workers}  # both workers served calls
    assert outputs["total"] == pids[0]
    # each tool_call event names the worker that ran it
    calls = [e for e in read_trace(doc["trace"]) if e.kind == "tool_call"]
    assert len(calls) == NODES + 1 and {e.attrs["worker"] for e in calls} == {"w-0", "w-1"}
    # the MQTT runner times the calls it runs: the deployment's statistics, saved when the run ended
    tools = json.loads((tmp_path / "home" / "tool_durations.json").read_text())["tools"]
    assert (tools["slow"]["count"], tools["add"]["count"]) == (NODES, 1)
