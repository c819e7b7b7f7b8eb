"""Whether a "running" run is still alive: its recorder's process touches a ``heartbeat`` file in the run's
folder every ``PERIOD_S``; a run whose heartbeat is older than ``STALE_S``, or whose process (``pid`` on this
``host``) is gone, was stopped without closing (killed, crashed, its machine lost) and reads as ``"stopped"``."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

HEARTBEAT_FILE = "heartbeat"
PERIOD_S = 5.0
STALE_S = 30.0


class Heartbeat:
    """Touches ``path`` now and every ``period_s`` on a daemon thread until ``stop()``."""

    def __init__(self, path: Path, period_s: float = PERIOD_S) -> None:
        self.path = path
        self._stop = threading.Event()
        self.path.touch()
        self._thread = threading.Thread(
            target=self._beat, args=(period_s,), name="run-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            try:
                self.path.touch()
            except OSError:  # the run's folder went away: nothing to keep alive
                return

    def stop(self) -> None:
        self._stop.set()


def owner() -> dict[str, Any]:
    """What ``run.json`` records of the recording process."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def is_stopped(run_dir: Path, meta: dict[str, Any], now: float | None = None) -> bool:
    """Whether a run marked running has lost its process: a stale heartbeat, or a dead pid on this host. A run
    recorded before heartbeats (no file, no pid) is taken at its word."""
    beat = run_dir / HEARTBEAT_FILE
    try:
        age = (time.time() if now is None else now) - beat.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_S:
        return True
    pid, host = meta.get("pid"), meta.get("host")
    if isinstance(pid, int) and host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
    return False
