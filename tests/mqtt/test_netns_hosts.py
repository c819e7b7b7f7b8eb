"""Tool workers on other hosts: the broker and two ``tether worker`` processes on separate network stacks
(``ip netns`` hosts joined by veth pairs, tests/mqtt/netns.py). A worker host loses its link mid-call: the call
is sent again to the other host, and the program gets exactly one result. Skipped, with the reason, where
network namespaces are not permitted."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mqtt.conftest import REPO, TOOLS_FILE, wait_until
from tests.mqtt.netns import Hosts, NetnsUnavailable
from tether.tools.mqtt import MqttToolRunner
from tether.tools.mqtt.mosquitto import find_mosquitto

pytestmark = pytest.mark.slow  # network namespaces, mosquitto and two `tether worker` processes


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


async def test_a_worker_host_that_loses_its_link_mid_call(tmp_path: Path) -> None:
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.skip("mosquitto is not installed (make deps installs it)")
    try:
        hosts = Hosts(workers=2).open()
    except NetnsUnavailable as exc:
        pytest.skip(f"separate hosts need network namespaces, not permitted here: {exc}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        conf = tmp_path / "mosquitto.conf"
        conf.write_text("listener 1883 0.0.0.0\nallow_anonymous true\n")
        broker = [*hosts.exec_prefix(hosts.broker), mosquitto, "-c", str(conf)]
        procs.append(subprocess.Popen(broker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        await wait_until(lambda: _reachable(hosts.broker_ip(0), 1883), what="the broker on its host")
        pids = {}
        for k in (1, 2):
            cmd = [*hosts.exec_prefix(hosts.worker(k)), sys.executable, "-m", "tether.cli", "worker"]
            cmd += ["--broker", f"mqtt://{hosts.broker_ip(k)}:1883", "--tools", str(TOOLS_FILE)]
            cmd += ["--worker-id", f"w{k}", "--keepalive", "2", "--ack-after", "0"]
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            pids[proc.pid] = k  # `ip netns exec` execs the worker in place: the same pid
        marker = tmp_path / "slow.log"
        async with MqttToolRunner(f"mqtt://{hosts.broker_ip(0)}:1883", timeout=60) as runner:
            await wait_until(lambda: runner.roster.online("w1") and runner.roster.online("w2"), timeout=30,
                             what="both worker hosts online")  # fmt: skip
            task = asyncio.ensure_future(runner.call("slow", {"seconds": 2.0, "marker": str(marker)}, call_id="k1"))
            await wait_until(lambda: len(_lines(marker)) == 1 and runner.stats.acks == 1, what="the call acked")
            victim = int(_lines(marker)[0].split()[1])
            (survivor,) = set(pids) - {victim}
            hosts.set_link(pids[victim], up=False)  # its host is cut off mid-call

            assert await task == survivor
            lines = _lines(marker)  # the cut-off host may finish its run too: its result never arrives
            assert lines[0] == f"start {victim}" and lines.index(f"start {survivor}") < lines.index(f"end {survivor}")
            stats = runner.stats
            assert (stats.calls, stats.results, stats.republished) == (1, 1, 1)
            assert not runner.roster.online(f"w{pids[victim]}")

            hosts.set_link(pids[victim], up=True)  # back: its late result, if it sends one, is not a second one
            await wait_until(lambda: runner.roster.online(f"w{pids[victim]}"), timeout=30, what="the host back")
            assert await runner.call("add", {"a": 2, "b": 3}, call_id="k2") == 5
            assert runner.stats.results == 2 and runner.stats.duplicates_ignored <= 1
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        hosts.close()
