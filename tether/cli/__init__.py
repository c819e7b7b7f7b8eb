"""``tether`` command line: one module per subcommand, registered here."""

from __future__ import annotations

import argparse
import sys

from tether.cli import bench, chat, generate, replay, run, serve, trace, ui, worker, workload


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether",
        description="Tether: a runtime for agentic LLM workloads.",
        epilog="exit status: 0 success; 2 a usage or input error (a bad flag, an unknown model, policy, run or "
        "file); 1 a failure at run time (the engine, a tool, a replayed turn, a taken port)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    generate.register(sub)
    chat.register(sub)
    bench.register(sub)
    bench.register_calibrate(sub)
    replay.register(sub)
    worker.register(sub)
    run.register(sub)
    serve.register(sub)
    trace.register(sub)
    ui.register(sub)
    workload.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tether.cli.settings_args import command_name, resolve_settings
    from tether.runtime.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        resolve_settings(args)  # flags > $TETHER_* > --config FILE > defaults, checked before anything starts
    except SettingsError as exc:
        print(f"{command_name(args)}: {exc}", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
