"""A ``tether worker`` subprocess killed with SIGKILL mid-call: the call is retried on another worker, and
the program gets exactly one result."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mqtt.conftest import wait_until
from tether.tools.mqtt import MqttToolRunner

pytestmark = pytest.mark.slow  # `tether worker` subprocesses, SIGKILLed mid-call (and mosquitto)

Spawn = Callable[[str, str], subprocess.Popen[bytes]]


def _lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


@pytest.mark.parametrize("acked", [True, False], ids=["after-ack", "before-ack"])
async def test_worker_killed_mid_call_loses_no_result(
    broker_url: str, spawn_worker: Spawn, tmp_path: Path, acked: bool
) -> None:
    """Killed after its ack, the worker holding the call is known; killed before it (--ack-after 30), the
    call is published again because a worker serving its tool left while nobody had acked it."""
    marker = tmp_path / "slow.log"
    ack_after = "0" if acked else "30"
    workers = {spawn_worker(broker_url, f"w-{i}", "--ack-after", ack_after).pid: f"w-{i}" for i in range(2)}
    async with MqttToolRunner(broker_url, timeout=30) as runner:
        await wait_until(lambda: all(map(runner.roster.online, workers.values())), what="both workers online")
        args = {"seconds": 1.0, "marker": str(marker)}
        task = asyncio.ensure_future(runner.call("slow", args, call_id="k1"))
        await wait_until(lambda: len(_lines(marker)) == 1, what="the slow tool to start")
        if acked:
            await wait_until(lambda: runner.stats.acks == 1, what="the ack")
        victim = int(_lines(marker)[0].split()[1])
        (survivor,) = set(workers) - {victim}
        os.kill(victim, signal.SIGKILL)

        assert await task == survivor
        assert _lines(marker) == [f"start {victim}", f"start {survivor}", f"end {survivor}"]
        stats = runner.stats
        assert (stats.calls, stats.results, stats.republished, stats.duplicates_ignored) == (1, 1, 1, 0)
        assert stats.acks == (2 if acked else 0)
        assert not runner.roster.online(workers[victim])
