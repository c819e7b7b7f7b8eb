"""Child processes on a free loopback port, ready once they answer ``/health``: ``tether serve``
(``serve_process``) and, through ``child_process``, ``tether ui`` (benchmarks and tests drive real ones)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def child_process(
    cmd: Sequence[str],
    base: str,
    *,
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run ``cmd`` (with ``env``, default this process's) until ``{base}/health`` answers 200; ``RuntimeError``
    with its output if it exits first or does not answer within ``timeout_s``. The process is terminated
    (killed after 20 s) on exit."""
    log = tempfile.TemporaryFile("w+")  # the child's output, read back if it dies
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True, env=None if env is None else dict(env)
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer /health within {timeout_s} s")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def serve_process(*args: str, timeout_s: float = 180.0, cwd: Path | None = None) -> Iterator[str]:
    """Run ``tether serve ARGS`` (this interpreter) and yield its ``/v1`` base URL once it is up."""
    port = free_port()
    cmd = [sys.executable, "-m", "tether.cli", "serve", "--port", str(port), *args]
    base = f"http://127.0.0.1:{port}"
    with child_process(cmd, base, what="tether serve", timeout_s=timeout_s, cwd=cwd):
        yield f"{base}/v1"
