"""``tether trace``: recorded runs (docs/tracing.md). ``tether trace export RUN_ID --format chrome|otlp-json|jsonl
-o FILE`` writes a run as Chrome Trace Event JSON (Perfetto), OTLP JSON or JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from tether.runtime.tracing.export import FORMATS

    p = sub.add_parser("trace", help="export recorded runs (Perfetto, OpenTelemetry, JSON lines)")
    commands = p.add_subparsers(dest="trace_command", required=True)
    e = commands.add_parser("export", help="write a run as Chrome Trace Event JSON, OTLP JSON or JSON lines")
    e.add_argument("run_id", metavar="RUN_ID")
    e.add_argument(
        "--format",
        choices=FORMATS,
        default="chrome",
        help="chrome (Perfetto, chrome://tracing), otlp-json (an OTLP ExportTraceServiceRequest) or jsonl "
        "(the events; default: chrome)",
    )
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write ('-': stdout)")
    e.add_argument(
        "--trace-dir",
        default=None,
        help="the runs' folder (default: $TETHER_HOME/runs when TETHER_HOME is set, else ./.tether/runs)",
    )
    e.add_argument(
        "--trace",
        default=None,
        metavar="NAME",
        help="export only this trace of a run with several (a replay's policy; default: all)",
    )
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tether.runtime.tracing.export import ExportError, export_run
    from tether.runtime.tracing.store import RunNotFoundError, load_run, trace_root
    from tether.runtime.tracing.writer import TraceFormatError

    try:
        loaded = load_run(trace_root(args.trace_dir), args.run_id)
        text = export_run(loaded, args.format, args.trace)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            Path(args.output).write_text(text, encoding="utf-8")
    except (RunNotFoundError, TraceFormatError, ExportError, OSError) as exc:
        print(f"tether trace export: {exc}", file=sys.stderr)
        return 2
    if args.output != "-":
        print(f"tether trace export: {args.run_id} ({args.format}) -> {args.output}", file=sys.stderr)
    return 0
