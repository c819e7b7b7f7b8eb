"""``MosquittoBroker``: a mosquitto process on a free loopback port with a generated config.

For tests and benchmarks on one machine (production runs mosquitto as a service). The config is minimal::

    listener PORT 127.0.0.1
    allow_anonymous true
    persistence false
    set_tcp_nodelay true

``set_tcp_nodelay`` (mosquitto >= 2.0) matters: mosquitto leaves Nagle's algorithm on by default.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tether.tools.mqtt.connection import BrokerAddress
from tether.tools.mqtt.errors import BrokerConnectionError


def find_mosquitto() -> str | None:
    """The mosquitto executable (``PATH``, then ``/usr/sbin`` where Debian puts it), or ``None``."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MosquittoBroker:
    """``async with MosquittoBroker() as broker: ... broker.url ...`` starts mosquitto and stops it after.

    ``stop`` then ``start`` restarts it on the same port (``stop(kill=True)``: SIGKILL, as in a crash).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, startup_timeout: float = 10.0):
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    @property
    def url(self) -> str:
        return str(self.address)

    async def start(self) -> None:
        exe = find_mosquitto()
        if exe is None:
            raise BrokerConnectionError(self.url, "mosquitto is not installed (apt-get install mosquitto)")
        self._dir = tempfile.TemporaryDirectory(prefix="tether-mosquitto-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
        )
        log = (Path(self._dir.name) / "mosquitto.log").open("wb")
        self._proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                text = (Path(self._dir.name) / "mosquitto.log").read_text(errors="replace")
                await self.stop()
                raise BrokerConnectionError(self.url, f"mosquitto exited at start: {text.strip()[-400:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                await asyncio.sleep(0.02)
        await self.stop()
        raise BrokerConnectionError(self.url, f"mosquitto did not listen within {self.startup_timeout:g} s")

    async def stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and kill:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        elif proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def __aenter__(self) -> MosquittoBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
