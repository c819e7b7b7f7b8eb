"""Export a recorded run: ``export_run(run, fmt, trace=None) -> str`` for ``fmt`` in ``FORMATS``.

- ``chrome``: Chrome Trace Event JSON (Perfetto, chrome://tracing), ``export_chrome.to_chrome``;
- ``otlp-json``: an OTLP ``ExportTraceServiceRequest`` in its JSON mapping, ``export_otlp.to_otlp``;
- ``jsonl``: the events themselves, one JSON object per line, ``export_jsonl.to_jsonl``.

``trace`` names one trace of a multi-trace (replay) run; ``None`` exports them all. This module only
dispatches; what the exporters share is in ``spans``. The chrome and OTLP exporters are imported when used:
``tether``'s parser imports ``FORMATS`` from here at every start.
"""

from __future__ import annotations

import json

from tether.runtime.tracing.export_jsonl import to_jsonl
from tether.runtime.tracing.spans import ExportError
from tether.runtime.tracing.store import Run

__all__ = ["FORMATS", "ExportError", "export_run"]

FORMATS = ("chrome", "otlp-json", "jsonl")


def export_run(run: Run, fmt: str, trace: str | None = None) -> str:
    """The run (or its trace ``trace``) as text in format ``fmt``; ``ExportError`` for an unknown format or
    trace. Equal runs give equal text (ids and order are derived from the events, never random)."""
    if fmt == "chrome":
        from tether.runtime.tracing.export_chrome import to_chrome

        return json.dumps(to_chrome(run, trace), separators=(",", ":"), allow_nan=False) + "\n"
    if fmt == "otlp-json":
        from tether.runtime.tracing.export_otlp import to_otlp

        return json.dumps(to_otlp(run, trace), separators=(",", ":"), allow_nan=False) + "\n"
    if fmt == "jsonl":
        return to_jsonl(run, trace)
    raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
