"""One ``ToolDurationStats`` per deployment, persisted so time-to-live predictions learn across runs.

``deployment_stats()`` is the process's instance for ``$TETHER_HOME/tool_durations.json`` (default
``~/.cache/tether``; ``tether.home.tether_home``), loaded from the file once per process; the DAG compiler,
the local tool runner and the engine of ``tether run`` / ``run_workflow``, ``AgentRuntime.create``,
``LocalEngineBackend.create`` and ``tether serve`` all get it, and ``save_deployment_stats()`` writes it back
when a run ends.

The file, bounded (``max_tools`` tools with the most observations, each its ``max_samples`` latest)::

    {"version": 1, "tools": {"<tool>": {"count": <all-time observations>, "samples": [<seconds>, ...]}}}

Rules: an unknown version, a corrupt file or a bad tool entry is skipped with a logged warning, never an
error; a write is atomic (a temp file in the same folder, then ``os.replace``) and one that fails is logged,
never raised. Processes that run at once each write their own view: the last to finish wins.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from tether.home import tether_home
from tether.tools.durations import ToolDurationStats
from tether.tools.errors import ToolStatsError

log = logging.getLogger(__name__)

FILE_NAME = "tool_durations.json"
FILE_VERSION = 1
MAX_TOOLS = 256
MAX_SAMPLES = 256


class ToolDurationStore:
    """``ToolDurationStats`` backed by one JSON file. ``stats`` is loaded on first use; ``save()`` writes
    the bounded snapshot back and returns whether it could."""

    def __init__(self, path: str | Path, *, max_tools: int = MAX_TOOLS, max_samples: int = MAX_SAMPLES) -> None:
        self.path = Path(path)
        self.max_tools = max_tools
        self.max_samples = max_samples
        self._stats: ToolDurationStats | None = None
        self._lock = threading.Lock()

    @property
    def stats(self) -> ToolDurationStats:
        with self._lock:
            if self._stats is None:
                self._stats = self.load()
            return self._stats

    def load(self) -> ToolDurationStats:
        """A new ``ToolDurationStats`` holding what the file has (empty when it is missing or unusable)."""
        stats = ToolDurationStats()
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return stats
        except (OSError, ValueError) as e:
            log.warning("ignoring the tool-duration file %s: %s", self.path, e)
            return stats
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION or not isinstance(
            data.get("tools"), dict
        ):
            version = data.get("version") if isinstance(data, dict) else None
            log.warning("ignoring the tool-duration file %s: not version %d (%r)", self.path, FILE_VERSION, version)
            return stats
        entries = sorted(data["tools"].items(), key=lambda kv: _count(kv[1]))
        for name, entry in entries[-self.max_tools :]:  # fewest observations first: the most land last
            try:
                stats.restore(name, entry["samples"][-self.max_samples :], entry["count"])
            except (ToolStatsError, KeyError, TypeError) as e:
                log.warning("ignoring tool %r in %s: %s", name, self.path, e)
        return stats

    def snapshot(self) -> dict[str, Any]:
        """The file's content for the current statistics, bounded by ``max_tools`` and ``max_samples``."""
        history = self.stats.history()
        kept = sorted(history, key=lambda name: (-history[name][0], name))[: self.max_tools]
        tools = {
            name: {"count": history[name][0], "samples": list(history[name][1][-self.max_samples :])}
            for name in sorted(kept)
        }
        return {"version": FILE_VERSION, "tools": tools}

    def save(self) -> bool:
        """Write ``snapshot()`` atomically; a failure is logged and returns False."""
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(self.snapshot(), f)
            os.replace(tmp, self.path)
            return True
        except OSError as e:
            log.warning("could not save the tool-duration file %s: %s", self.path, e)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False


def _count(entry: Any) -> int:
    count = entry.get("count") if isinstance(entry, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


_stores: dict[Path, ToolDurationStore] = {}
_stores_lock = threading.Lock()


def deployment_store() -> ToolDurationStore:
    """The process's store for ``$TETHER_HOME/tool_durations.json`` (one per path, made on first use)."""
    path = tether_home() / FILE_NAME
    with _stores_lock:
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = ToolDurationStore(path)
        return store


def deployment_stats() -> ToolDurationStats:
    """The deployment's one ``ToolDurationStats``: shared by the compiler, the tool runner and the engine."""
    return deployment_store().stats


def save_deployment_stats() -> bool:
    """Write the deployment's statistics back to its file (never raises; False when it could not)."""
    return deployment_store().save()
