"""The UI's reads of the run store: ``RunIndex`` lists runs with their summaries (cached per file size and
mtime, so the list page can poll) and ``run_view`` is the payload of one run: ``run.json``, every trace's
events, the byte offsets the live stream continues from and the traces whose last line was cut."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tether.runtime.tracing import TraceEvent, TraceFormatError
from tether.runtime.tracing.store import run_meta
from tether.runtime.ui.summary import duration_s, run_summary
from tether.runtime.ui.tail import TraceTail


def read_traces(root: Path, meta: dict[str, Any]) -> tuple[dict[str, TraceTail], dict[str, list[TraceEvent]]]:
    """Every trace of the run, read up to its last complete line (and past it once the run has ended)."""
    final = meta.get("status") != "running"
    tails, traces = {}, {}
    for name, file in (meta.get("traces") or {}).items():
        tails[name] = TraceTail(root / meta["run_id"] / file)
        traces[name] = tails[name].read(final=final)
    return tails, traces


def run_view(root: Path, run_id: str) -> dict[str, Any]:
    """``RunNotFoundError`` for an unknown run, ``TraceFormatError`` for a malformed line or ``run.json``."""
    meta = {**run_meta(root, run_id), "run_id": run_id}
    tails, traces = read_traces(root, meta)
    return {
        "meta": meta,
        "summary": run_summary(meta, traces),
        "traces": {name: [e.to_dict() for e in events] for name, events in traces.items()},
        "offsets": {name: tail.offset for name, tail in tails.items()},
        "truncated": [name for name, tail in tails.items() if tail.truncated],
    }


_UNKNOWN = ("programs", "input_tokens", "output_tokens", "cache_read_tokens", "cache_hit_rate")


class RunIndex:
    """Summaries of the runs under ``root``, newest first; a run whose trace is malformed is listed with its
    ``error``. A run is re-read only when its ``run.json`` or a trace file changed size or mtime."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def summaries(self) -> list[dict[str, Any]]:
        rows = []
        for path in self.root.glob("*/run.json") if self.root.is_dir() else ():
            row = self._summary(path.parent.name)
            if row is not None:
                rows.append(row)
        return sorted(rows, key=lambda r: r.get("started") or 0.0, reverse=True)

    def _summary(self, run_id: str) -> dict[str, Any] | None:
        try:
            key = tuple(_stat(p) for p in sorted((self.root / run_id).iterdir()))
        except OSError:
            return None  # removed while listing
        with self._lock:
            cached = self._cache.get(run_id)
        if cached is not None and cached[0] == key:
            row = cached[1]
        else:
            try:
                meta = {**run_meta(self.root, run_id), "run_id": run_id}
            except (LookupError, TraceFormatError, OSError):
                return None  # run.json being replaced or not JSON: as list_runs, skip it
            try:
                row = run_summary(meta, read_traces(self.root, meta)[1])
            except TraceFormatError as exc:
                row = {**run_summary(meta, {}), **dict.fromkeys(_UNKNOWN), "error": str(exc)}
            with self._lock:
                self._cache[run_id] = (key, row)
        if row["status"] == "running":
            row = {**row, "duration_s": duration_s(row)}
        return row


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (path.name, -1, -1)
    return (path.name, st.st_size, st.st_mtime_ns)
