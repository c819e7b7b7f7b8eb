"""A ``tether serve`` child process on a free loopback port (benchmarks and tests drive a real server)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(*args: str, timeout_s: float = 180.0, cwd: Path | None = None) -> Iterator[str]:
    """Run ``tether serve ARGS`` (this interpreter) and yield its ``/v1`` base URL once ``/health`` answers;
    ``RuntimeError`` with the server's output if it exits or does not answer within ``timeout_s``. The
    process is terminated on exit."""
    port = free_port()
    cmd = [sys.executable, "-m", "runtime.cli", "serve", "--port", str(port), *args]
    log = tempfile.TemporaryFile("w+")  # the server's output, read back if it dies
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"tether serve exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tether serve did not answer /health within {timeout_s} s")
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
