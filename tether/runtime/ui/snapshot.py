"""``write_snapshot``: one self-contained HTML file of a run (the page's CSS and JS and the run's payload
inlined) that opens from ``file://`` with no server and shows the same run view, without live updates and
with its exports: the JSONL built in the page, the Chrome and OTLP exports inlined."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tether.runtime.tracing.store import load_run
from tether.runtime.ui.exports import export_text
from tether.runtime.ui.runs import run_view

STATIC = Path(__file__).parent / "static"
_SCRIPT = re.compile(r'<script src="static/([\w-]+\.js)"></script>')
_STYLE = re.compile(r'<link rel="stylesheet" href="static/([\w-]+\.css)">')
_DATA = "<!-- snapshot-data -->"
SNAPSHOT_EXPORTS = ("chrome", "otlp-json")  # computed from the same events; the page builds the JSONL itself


class SnapshotError(ValueError):
    pass


def snapshot_html(payload: dict[str, Any], exports: dict[str, str] | None = None) -> str:
    """The page with ``payload`` inlined; ``exports``: the run's export texts by format (``chrome``,
    ``otlp-json``), offered as downloads beside the JSONL the page builds itself."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    if _DATA not in html:
        raise SnapshotError(f"index.html has no {_DATA} marker")
    data = {**payload, "snapshot": {"created": time.time(), "exports": exports or {}}}
    html = html.replace(_DATA, f"<script>window.TETHER_SNAPSHOT = {_script_json(data)};</script>")
    html = _STYLE.sub(lambda m: f"<style>\n{_asset(m.group(1))}</style>", html)
    return _SCRIPT.sub(lambda m: f"<script>\n{_asset(m.group(1))}</script>", html)


def write_snapshot(root: Path, run_id: str, out: Path) -> Path:
    """``RunNotFoundError`` / ``TraceFormatError`` as ``run_view``; the folders of ``out`` are created."""
    run = load_run(root, run_id)
    exports = {fmt: export_text(run, fmt) for fmt in SNAPSHOT_EXPORTS}
    html = snapshot_html(run_view(Path(root), run_id), exports)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _asset(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    if re.search(r"</(script|style)", text, re.IGNORECASE):
        raise SnapshotError(f"static/{name} contains a closing script or style tag and cannot be inlined")
    return text


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: ASCII only (so no JS line separators) and no '<' (so no '</script>')."""
    return json.dumps(data, default=str).replace("<", "\\u003c")
