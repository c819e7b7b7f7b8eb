"""A run whose process died without closing it reads as "stopped", not "running" (``heartbeat.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tether.runtime.tracing.heartbeat import HEARTBEAT_FILE, STALE_S
from tether.runtime.tracing.store import RunRecorder, run_meta

RECORD_AND_DIE = """
import os, sys
from tether.runtime.tracing.store import RunRecorder
r = RunRecorder("serve", "serve", trace_dir=sys.argv[1], run_id="crashed")
print(r.meta["pid"], flush=True)
os._exit(0)  # no end(): as a killed process
"""


def test_a_live_run_is_running_and_an_ended_one_keeps_its_status(tmp_path: Path) -> None:
    recorder = RunRecorder("serve", "serve", trace_dir=tmp_path, run_id="live")
    meta = run_meta(tmp_path, "live")
    assert meta["status"] == "running" and meta["pid"] == os.getpid()
    recorder.end("aborted")
    assert run_meta(tmp_path, "live")["status"] == "aborted"


def test_a_run_whose_process_died_reads_as_stopped(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", RECORD_AND_DIE, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert run_meta(tmp_path, "crashed")["status"] == "stopped"


def test_a_stale_heartbeat_reads_as_stopped(tmp_path: Path) -> None:
    recorder = RunRecorder("run", "r", trace_dir=tmp_path, run_id="stale")
    recorder._heartbeat.stop()
    old = time.time() - STALE_S - 1
    os.utime(tmp_path / "stale" / HEARTBEAT_FILE, (old, old))
    assert run_meta(tmp_path, "stale")["status"] == "stopped"
