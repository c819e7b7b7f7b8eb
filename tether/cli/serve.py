"""``tether serve``: the OpenAI-compatible server (``tether.runtime.server``) on uvicorn, bound to loopback unless
``--host`` says otherwise."""

from __future__ import annotations

import argparse
import socket
import sys

from tether.cli.common import ShowDefaults, add_engine_args, check_engine_flags, listen
from tether.cli.settings_args import add_settings_args, settings_of
from tether.runtime.settings import EngineSettings, ServerSettings, SettingsError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        formatter_class=ShowDefaults,
        help="serve the OpenAI API (chat, completions, models, metrics)",
    )
    add_settings_args(p, ServerSettings)  # --host, --port, ..., and the cluster section (--replicas, ...)
    p.add_argument(
        "--trace-dir",
        default=None,
        help="where the run's trace is recorded (default: $TETHER_HOME/runs, else ./.tether/runs)",
    )
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        engine = settings_of(args, EngineSettings)
        server_config = settings_of(args, ServerSettings).server_config(engine.model)
        config = engine.engine_config()
    except (SettingsError, ValueError) as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 2
    problem = check_engine_flags(args)
    if problem is not None:
        print(f"tether serve: {problem}", file=sys.stderr)
        return 2
    sock = listen(args.host, args.port, "serve")  # before the engine loads or a run is recorded
    if sock is None:
        return 1
    if args.replicas is not None:
        from tether.cli.serve_cluster import run_cluster

        return run_cluster(args, config, server_config, sock)
    return _serve(args, config, server_config, sock)


def _serve(args: argparse.Namespace, config, server_config, sock: socket.socket) -> int:
    """One engine in this process behind the app, on ``sock``."""
    import asyncio

    from tether.runtime.deployment import Deployment
    from tether.runtime.engine.errors import EngineError
    from tether.runtime.server.app import create_app
    from tether.runtime.server.outcome import TurnOutcomes

    async def main() -> None:
        deployment = Deployment()
        outcomes = TurnOutcomes(deployment.stats)  # clients run the tools: their pauses time them
        backend = await deployment.start_local_engine(config, turn_outcome=outcomes.outcome)
        try:
            meta = {"model": args.model, "policy": config.policy}
            recorder = await deployment.record("serve", "serve", trace_dir=args.trace_dir, meta=meta)
            server = uvicorn_server(args)
            server.config.app = create_app(
                backend.engine,
                server_config,
                outcomes,
                on_shutdown=deployment.close,
                shutting_down=lambda: server.should_exit,
            )
            print(
                f"tether serve: {', '.join(server_config.served_model_names)} (policy {config.policy}) on "
                f"http://{args.host}:{args.port}/v1; trace: {recorder.dir}",
                file=sys.stderr,
                flush=True,
            )
            await server.serve(sockets=[sock])
        finally:
            await deployment.close()  # a no-op when the app's shutdown closed it

    try:
        asyncio.run(main())
    except (EngineError, ValueError) as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 1
    return 0


def uvicorn_server(args: argparse.Namespace, app=None):
    """The uvicorn server the flags describe (its app set later when ``None``); ``serve(sockets=[sock])``
    serves on the socket ``listen`` bound."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
            timeout_graceful_shutdown=args.shutdown_timeout,
        )
    )
