"""``tether ui``: the trace inspection UI (``tether.runtime.ui``) on uvicorn, bound to loopback unless ``--host``
says otherwise; ``--snapshot RUN_ID -o FILE.html`` writes one run as a self-contained HTML file instead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tether.cli.common import ShowDefaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ui",
        formatter_class=ShowDefaults,
        help="browse recorded runs: DAGs, timelines, KV and queue counters, replays",
    )
    add_args(p)
    p.set_defaults(func=run)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trace-dir",
        type=Path,
        default=None,
        help="the run store (default: $TETHER_HOME/runs, else ./.tether/runs)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--snapshot", metavar="RUN_ID", default=None, help="write RUN_ID as one HTML file (with -o)"
    )
    p.add_argument("-o", "--output", type=Path, default=None, help="the snapshot's file (FILE.html)")
    p.add_argument("--log-level", default="warning", help="uvicorn's log level")


def run(args: argparse.Namespace) -> int:
    from tether.runtime.tracing import trace_root

    root = trace_root(args.trace_dir)
    if args.snapshot is not None:
        return _snapshot(root, args.snapshot, args.output)
    if args.output is not None:
        print("tether ui: -o/--output needs --snapshot RUN_ID", file=sys.stderr)
        return 2
    import uvicorn

    from tether.cli.common import listen
    from tether.runtime.ui import create_ui_app

    sock = listen(args.host, args.port, "ui")
    if sock is None:
        return 1
    app = create_ui_app(root)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=1
    )
    print(f"tether ui: runs under {root} on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _snapshot(root: Path, run_id: str, output: Path | None) -> int:
    from tether.runtime.tracing import RunNotFoundError, TraceFormatError
    from tether.runtime.ui import write_snapshot

    if output is None:
        print("tether ui: --snapshot needs -o FILE.html", file=sys.stderr)
        return 2
    try:
        path = write_snapshot(root, run_id, output)
    except RunNotFoundError as exc:  # an input error, as in `tether trace export`
        print(f"tether ui: {exc}", file=sys.stderr)
        return 2
    except TraceFormatError as exc:
        print(f"tether ui: {exc}", file=sys.stderr)
        return 1
    print(f"tether ui: wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m tether.cli.ui``: the same command without the ``tether`` front end."""
    parser = argparse.ArgumentParser(prog="tether ui")
    add_args(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
