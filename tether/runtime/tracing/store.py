"""Run directories: ``<root>/<run_id>/run.json`` and the run's event files (docs/tracing.md, "Where runs go").

``trace_root(trace_dir)``: ``trace_dir`` when given, else ``$TETHER_HOME/runs``, else ``./.tether/runs``.
``RunRecorder`` creates a run, hands out a ``JsonlTraceWriter`` per trace and marks the run ended;
``list_runs`` / ``load_run`` read them back (``RunNotFoundError``, ``TraceFormatError``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.runtime.tracing.events import TraceEvent
from tether.runtime.tracing.heartbeat import HEARTBEAT_FILE, Heartbeat, is_stopped, owner
from tether.runtime.tracing.jsonl_writer import JsonlTraceWriter, TraceWriteError
from tether.runtime.tracing.writer import TraceFormatError, read_trace

RUN_FILE = "run.json"
MAIN_TRACE = "main"
RUN_KINDS = ("run", "serve", "replay", "agents")
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


class RunNotFoundError(LookupError):
    def __init__(self, run_id: str, root: Path) -> None:
        super().__init__(f"no run {run_id!r} under {root}")
        self.run_id, self.root = run_id, root


def trace_root(trace_dir: str | Path | None = None) -> Path:
    if trace_dir is not None:
        return Path(trace_dir)
    home = os.environ.get("TETHER_HOME")
    return Path(home) / "runs" if home else Path(".tether") / "runs"


def new_run_id(name: str) -> str:
    """``<name>-<UTC date-time>-<4 hex digits>``: sortable by start, unique across processes."""
    slug = _SLUG.sub("-", name).strip("-")[:40] or "run"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


class RunRecorder:
    """One run being recorded. ``trace(name)`` opens (once) the writer of one of its traces (``main``, or a
    policy's name in a replay); ``end(status, **extra)`` closes the writers (each drains what was emitted to
    it) and completes ``run.json``."""

    def __init__(
        self,
        kind: str,
        name: str,
        *,
        trace_dir: str | Path | None = None,
        meta: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        """``run_id``: the run's folder name (default ``new_run_id(name)``); ``ValueError`` for one that is
        not a plain name or already exists."""
        if kind not in RUN_KINDS:
            raise ValueError(f"run kind must be one of {RUN_KINDS}, got {kind!r}")
        if run_id is not None and (_SLUG.search(run_id) or run_id in (".", "..")):
            raise ValueError(f"run id must be letters, digits, '_', '-' and '.', got {run_id!r}")
        self.run_id = run_id or new_run_id(name)
        self.dir = trace_root(trace_dir) / self.run_id
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ValueError(f"run {self.run_id!r} already exists under {self.dir.parent}") from None
        self.meta: dict[str, Any] = {
            "run_id": self.run_id,
            "kind": kind,
            "name": name,
            "command": shlex.join(["tether", *sys.argv[1:]]) if sys.argv[0].endswith("tether") else None,
            "status": "running",
            "started": time.time(),
            "ended": None,
            "traces": {},
            **owner(),
            **(meta or {}),
        }
        self._writers: dict[str, JsonlTraceWriter] = {}
        self._save()
        self._heartbeat = Heartbeat(self.dir / HEARTBEAT_FILE)

    def trace(self, name: str = MAIN_TRACE) -> JsonlTraceWriter:
        if name not in self._writers:
            file = "events.jsonl" if name == MAIN_TRACE else f"{_SLUG.sub('-', name)}.jsonl"
            self._writers[name] = JsonlTraceWriter(self.dir / file)
            self.meta["traces"][name] = file
            self._save()
        return self._writers[name]

    def update(self, **fields: Any) -> None:
        self.meta.update(fields)
        self._save()

    def end(self, status: str = "ok", **fields: Any) -> None:
        """Closes every writer, then completes ``run.json``; a writer's ``TraceWriteError`` is raised after
        ``run.json`` is saved (the first one, when several fail)."""
        self._heartbeat.stop()
        failures: list[TraceWriteError] = []
        for writer in self._writers.values():
            try:
                writer.close()
            except TraceWriteError as exc:
                failures.append(exc)
        self.meta.update(fields, status=status, ended=time.time())
        self._save()
        if failures:
            raise failures[0]

    def _save(self) -> None:
        tmp = self.dir / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, default=str))
        tmp.replace(self.dir / RUN_FILE)  # atomic: a reader never sees half a file


@dataclass(frozen=True)
class Run:
    meta: dict[str, Any]
    traces: dict[str, list[TraceEvent]]

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """The ``run.json`` of every run under ``root``, newest first (unreadable ones are skipped)."""
    root = Path(root)
    metas = []
    for path in root.glob(f"*/{RUN_FILE}") if root.is_dir() else ():
        try:
            metas.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(metas, key=lambda m: m.get("started") or 0.0, reverse=True)


def run_meta(root: str | Path, run_id: str) -> dict[str, Any]:
    path = Path(root) / run_id / RUN_FILE
    if "/" in run_id or run_id in ("", ".", "..") or not path.is_file():
        raise RunNotFoundError(run_id, Path(root))
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TraceFormatError(str(path), exc.lineno, f"run.json is not JSON: {exc.msg}") from None
    if isinstance(meta, dict) and meta.get("status") == "running" and is_stopped(path.parent, meta):
        meta["status"] = "stopped"  # its process is gone without closing the run (heartbeat.py)
    return meta


def load_run(root: str | Path, run_id: str) -> Run:
    """The run's metadata and every trace's events (``TraceFormatError`` for a malformed trace line)."""
    meta = run_meta(root, run_id)
    directory = Path(root) / run_id
    traces = {}
    for name, file in (meta.get("traces") or {}).items():
        path = directory / file
        traces[name] = read_trace(path) if path.is_file() else []
    return Run(meta, traces)
