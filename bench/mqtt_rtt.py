"""Tool-call round trip over MQTT on loopback: p50/p99 for the embedded broker (amqtt) and mosquitto.

    .venv/bin/python bench/mqtt_rtt.py [--calls 1000] [--warmup 200] [--brokers embedded,mosquitto]
    .venv/bin/python bench/mqtt_rtt.py --compare /path/to/other/checkout [--rounds 3] [--calls 1000]

For each broker: a ``tether worker`` subprocess serves a no-op async tool; this process runs the broker (the
embedded one in process, mosquitto as a subprocess with set_tcp_nodelay) and an ``MqttToolRunner`` that
makes ``--calls`` sequential calls after ``--warmup``. One call is CallEnvelope -> ack + ResultEnvelope, all
QoS 1. For reference it also times a bare MQTT QoS 1 echo (publish to a topic this client subscribes to)
with TCP_NODELAY, and without it (``--nagle-calls`` echoes) to show what Nagle's algorithm costs, and the
CPU time per tool call of this process and of the worker (from /proc).

``--compare TREE`` times tool calls of two checkouts side by side on one mosquitto: ``--rounds`` rounds, each
running the runner and worker of TREE, then of this checkout (each in a fresh subprocess: ``--tree`` and
``--url``), and reports p50/p99 over the pooled samples of each, so both see the same broker and about the same
machine load.
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
if "--tree" in sys.argv:  # the checkout whose runner and worker are timed (--compare runs each in a subprocess)
    REPO = Path(sys.argv[sys.argv.index("--tree") + 1]).resolve()
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
    cmd = [sys.executable, "-m", "tether.cli", "worker", "--broker", url, "--tools", str(tools_file)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, env=env)
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
                "samples_s": samples,
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


def compare(args: argparse.Namespace) -> int:
    """Tool-call RTT of ``args.compare`` and of this checkout, interleaved in rounds on one mosquitto."""
    trees = {"compared": Path(args.compare).resolve(), "this": Path(__file__).resolve().parents[1]}
    pooled: dict[str, list[float]] = {name: [] for name in trees}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}

    async def serve() -> None:
        async with MosquittoBroker() as broker:
            with tempfile.TemporaryDirectory() as tmp:
                for _ in range(args.rounds):
                    for name, tree in trees.items():
                        out = Path(tmp) / f"{name}.json"
                        cmd = [sys.executable, __file__, "--tree", str(tree), "--url", broker.url]
                        cmd += ["--calls", str(args.calls), "--warmup", str(args.warmup), "--json", str(out)]
                        done = await asyncio.to_thread(subprocess.run, cmd, cwd=tree)
                        if done.returncode != 0:
                            raise SystemExit(f"the benchmark of {tree} failed")
                        (r,) = json.loads(out.read_text())
                        pooled[name] += r["tool_call"]["samples_s"]
                        t = r["tool_call"]
                        cpu[name].append((t["cpu_us_per_call_this_process"], t["cpu_us_per_call_worker"]))

    asyncio.run(serve())
    _print_machine()
    print(f"mosquitto, {args.rounds} interleaved rounds of {args.calls} calls each; the trees:")
    for name, tree in trees.items():
        print(f"  {name:9s} {tree}")
    print(f"{'tree':9s} {'n':>6s} {'p50 us':>9s} {'p90 us':>9s} {'p99 us':>9s} {'mean us':>9s} {'CPU us/call':>22s}")
    for name in trees:
        s = summary(pooled[name])
        q90 = statistics.quantiles(sorted(pooled[name]), n=10, method="inclusive")[8] * 1e6
        runner = statistics.fmean(c[0] for c in cpu[name])
        worker = statistics.fmean(c[1] for c in cpu[name])
        print(
            f"{name:9s} {s['n']:6d} {s['p50_us']:9.0f} {q90:9.0f} {s['p99_us']:9.0f} {s['mean_us']:9.0f} "
            f"{f'runner {runner:.0f} / worker {worker:.0f}':>22s}"
        )
    return 0


def _print_machine() -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--nagle-calls", type=int, default=100, help="echoes timed without TCP_NODELAY")
    p.add_argument("--brokers", default="embedded,mosquitto")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.add_argument("--compare", default=None, help="another checkout: time its tool calls against this one's")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --compare")
    p.add_argument("--tree", default=None, help="the checkout to time (set by --compare)")
    p.add_argument("--url", default=None, help="time tool calls only, through the broker already at this URL")
    args = p.parse_args()
    if args.compare:
        return compare(args)
    if args.url:
        tools_dir = tempfile.TemporaryDirectory()
        tools_file = Path(tools_dir.name) / "noop_tools.py"
        tools_file.write_text(NOOP_TOOLS)
        result = asyncio.run(time_tool_calls(args.url, tools_file, args.calls, args.warmup))
        tools_dir.cleanup()
        if args.json:
            Path(args.json).write_text(json.dumps([{"broker": args.url, "tool_call": result}]))
        return 0
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
    _print_machine()
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
        for r in results:
            r["tool_call"].pop("samples_s")  # type: ignore[union-attr]
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
