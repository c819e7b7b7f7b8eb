"""``tether ui``: the trace inspection UI, a static page (plain JS + SVG) over a small JSON API on the run store
(docs/tracing.md, "The UI"). ``create_ui_app(root)`` is the FastAPI app; ``write_snapshot`` the one-file HTML."""

from __future__ import annotations

from tether.runtime.ui.app import create_ui_app
from tether.runtime.ui.snapshot import write_snapshot

__all__ = ["create_ui_app", "write_snapshot"]
