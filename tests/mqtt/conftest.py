"""Real brokers for the MQTT tests: the embedded amqtt broker and a mosquitto process on a free port."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tether.tools.mqtt.broker import EmbeddedBroker
from tether.tools.mqtt.mosquitto import MosquittoBroker, find_mosquitto
from tether.tools.registry import ToolRegistry

REPO = Path(__file__).resolve().parents[2]
TOOLS_FILE = Path(__file__).with_name("remote_tools.py")


@pytest.fixture
async def embedded() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
async def mosquitto() -> AsyncIterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (make deps installs it)")
    async with MosquittoBroker() as broker:
        yield broker


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.slow)])
async def broker_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The same test against both brokers."""
    if request.param == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (make deps installs it)")
    broker = EmbeddedBroker() if request.param == "embedded" else MosquittoBroker()
    async with broker:
        yield broker.url


@pytest.fixture
def registry() -> ToolRegistry:
    from tests.mqtt import remote_tools

    remote_tools.RUNS.clear()
    reg = ToolRegistry()
    reg.load("tests.mqtt.remote_tools")
    return reg


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``tether worker`` subprocesses serving ``remote_tools.py``; killed at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(url: str, worker_id: str, *extra: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "tether.cli", "worker", "--broker", url, "--tools", str(TOOLS_FILE)]
        cmd += ["--worker-id", worker_id, "--keepalive", "2", *extra]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
