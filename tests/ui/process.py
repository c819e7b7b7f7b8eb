"""A ``tether ui`` child process on a free loopback port (the browser tests drive a real one)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from tether.runtime.bench.process import child_process, free_port


@contextlib.contextmanager
def ui_process(trace_dir: Path, *args: str, timeout_s: float = 60.0, cwd: Path | None = None) -> Iterator[str]:
    """Run ``tether ui --trace-dir TRACE_DIR ARGS`` and yield its base URL once ``/health`` answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "tether.cli", "ui", "--trace-dir", str(trace_dir), "--port", str(port), *args]
    base = f"http://127.0.0.1:{port}"
    with child_process(cmd, base, what="tether ui", timeout_s=timeout_s, cwd=cwd):
        yield base
