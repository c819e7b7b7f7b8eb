"""The export button's downloads: ``tether.runtime.tracing.export.export_run`` (chrome, otlp-json, jsonl), with the
media type and file name of each format."""

from __future__ import annotations

from tether.runtime.tracing.store import Run

FORMATS = {
    "chrome": ("application/json", "chrome.json"),
    "otlp-json": ("application/json", "otlp.json"),
    "jsonl": ("application/x-ndjson", "jsonl"),
}


def export_text(run: Run, fmt: str, trace: str | None = None) -> str:
    """``ValueError`` for a format not in ``FORMATS`` or a trace the run does not have."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    from tether.runtime.tracing.export import export_run

    return export_run(run, fmt) if trace is None else export_run(run, fmt, trace)


def filename(run_id: str, fmt: str, trace: str | None = None) -> str:
    return f"{run_id}{'' if trace is None else '.' + trace}.{FORMATS[fmt][1]}"
