"""Tool-call round trip over MQTT on loopback: p50/p99 for the embedded broker (amqtt) and mosquitto.

    .venv/bin/python bench/mqtt_rtt.py [--calls 1000] [--warmup 200] [--brokers embedded,mosquitto]

For each broker: a ``tether worker`` subprocess serves a no-op async tool; this process runs the broker (the
embedded one in process, mosquitto as a subprocess with set_tcp_nodelay) and an ``MqttToolRunner`` that
makes ``--calls`` sequential calls after ``--warmup``. One call is CallEnvelope -> ack + ResultEnvelope, all
QoS 1. For reference it also times a bare MQTT QoS 1 echo (publish to a topic this client subscribes to)
with TCP_NODELAY, and without it (``--nagle-calls`` echoes) to show what Nagle's algorithm costs, and the
CPU time per tool call of this process and of the worker (from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiomqtt  # noqa: E402
from tether.tools.mqtt import MqttToolRunner  # noqa: E402
from tether.tools.mqtt.broker import EmbeddedBroker  # noqa: E402
from tether.tools.mqtt.connection import NODELAY, BrokerAddress  # noqa: E402
from tether.tools.mqtt.mosquitto import MosquittoBroker, find_mosquitto  # noqa: E402

NOOP_TOOLS = '''
from tether.tools.tool import tool


@tool
async def noop() -> None:
    """Do nothing."""
'''


def summary(samples_s: list[float]) -> dict[str, float]:
    us = sorted(s * 1e6 for s in samples_s)
    q = statistics.quantiles(us, n=100, method="inclusive")
    return {"n": len(us), "p50_us": q[49], "p99_us": q[98], "mean_us": statistics.fmean(us), "max_us": us[-1]}


async def time_tool_calls(url: str, tools_file: Path, calls: int, warmup: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "tether.runtime.cli", "worker", "--broker", url, "--tools", str(tools_file)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        async with MqttToolRunner(url, timeout=30) as runner:
            await asyncio.wait_for(runner.roster.wait_route("noop", {}), 30)
            for i in range(warmup):
                await runner.call("noop", {}, call_id=f"w{i}")
            samples = []
            cpu_here, cpu_worker = time.process_time(), _cpu_seconds(proc.pid)
            for i in range(calls):
                start = time.perf_counter()
                await runner.call("noop", {}, call_id=f"c{i}")
                samples.append(time.perf_counter() - start)
            cpu_here, cpu_worker = time.process_time() - cpu_here, _cpu_seconds(proc.pid) - cpu_worker
            assert runner.stats.republished == 0 and runner.stats.duplicates_ignored == 0
            return summary(samples) | {
                "cpu_us_per_call_this_process": cpu_here / calls * 1e6,
                "cpu_us_per_call_worker": cpu_worker / calls * 1e6,
            }
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def time_echo(address: BrokerAddress, calls: int, nodelay: bool) -> dict[str, float]:
    options = [NODELAY] if nodelay else [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)]
    async with aiomqtt.Client(address.host, address.port, socket_options=options) as client:
        await client.subscribe("bench/echo", qos=1)
        samples = []
        for i in range(calls + 20):
            start = time.perf_counter()
            await client.publish("bench/echo", b"x" * 64, qos=1)
            async for _ in client.messages:
                break
            if i >= 20:
                samples.append(time.perf_counter() - start)
        return summary(samples)


async def run_broker(name: str, args: argparse.Namespace, tools_file: Path) -> dict[str, object]:
    broker = EmbeddedBroker() if name == "embedded" else MosquittoBroker()
    async with broker:
        return {
            "broker": name,
            "tool_call": await time_tool_calls(broker.url, tools_file, args.calls, args.warmup),
            "echo_nodelay": await time_echo(broker.address, args.calls, nodelay=True),
            "echo_nagle": await time_echo(broker.address, args.nagle_calls, nodelay=False),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--nagle-calls", type=int, default=100, help="echoes timed without TCP_NODELAY")
    p.add_argument("--brokers", default="embedded,mosquitto")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    brokers = args.brokers.split(",")
    if "mosquitto" in brokers and find_mosquitto() is None:
        print("mosquitto is not installed (make deps); skipping it", file=sys.stderr)
        brokers.remove("mosquitto")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tools_file = Path(tmp) / "noop_tools.py"
        tools_file.write_text(NOOP_TOOLS)
        for name in brokers:
            results.append(asyncio.run(run_broker(name, args, tools_file)))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load}"
    )
    print(f"{'broker':10s} {'what':28s} {'n':>5s} {'p50 us':>9s} {'p99 us':>9s} {'mean us':>9s}")
    for r in results:
        for key, label in (
            ("tool_call", "tool call (no-op tool)"),
            ("echo_nodelay", "QoS 1 echo, TCP_NODELAY"),
            ("echo_nagle", "QoS 1 echo, Nagle on"),
        ):
            s = r[key]
            assert isinstance(s, dict)
            print(
                f"{r['broker']:10s} {label:28s} {s['n']:5d} {s['p50_us']:9.0f} {s['p99_us']:9.0f} "
                f"{s['mean_us']:9.0f}"
            )
    for r in results:
        s = r["tool_call"]
        assert isinstance(s, dict)
        print(
            f"{r['broker']}: CPU per tool call: {s['cpu_us_per_call_this_process']:.0f} us in this process "
            f"(runner{' + broker' if r['broker'] == 'embedded' else ''}), "
            f"{s['cpu_us_per_call_worker']:.0f} us in the worker"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
