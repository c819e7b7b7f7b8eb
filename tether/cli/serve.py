"""``tether serve``: the OpenAI-compatible server (``tether.runtime.server``) on uvicorn, bound to loopback unless
``--host`` says otherwise."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from tether.cli.common import ShowDefaults, add_engine_args, check_engine_flags, engine_kwargs, listen


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        formatter_class=ShowDefaults,
        help="serve the OpenAI API (chat, completions, models, metrics)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument(
        "--api-key",
        default=os.environ.get("TETHER_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1 (default: $TETHER_API_KEY, else none)",
    )
    p.add_argument(
        "--served-model-name",
        action="append",
        default=None,
        help="a name clients use as 'model' (repeatable; default: the --model value)",
    )
    p.add_argument(
        "--program-idle-timeout",
        type=float,
        default=600.0,
        help="seconds without a request after which a program is ended and its pins released",
    )
    p.add_argument(
        "--max-tokens-default",
        type=int,
        default=None,
        help="the output cap of a request that sets no max_tokens (default: 1024, ServerConfig's; 0: up to the "
        "end of the context)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="on SIGTERM / SIGINT, seconds to let requests in flight finish before they are aborted (the run "
        "then ends as 'aborted', else 'ok')",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn's log level")
    p.add_argument(
        "--trace-dir",
        default=None,
        help="where the run's trace is recorded (default: $TETHER_HOME/runs, else ./.tether/runs)",
    )
    _add_cluster_args(p)
    add_engine_args(p)
    p.set_defaults(func=run)


def _add_cluster_args(p: argparse.ArgumentParser) -> None:
    cluster = p.add_argument_group(
        "cluster", "engine replicas on Ray Serve (pip install tether[cluster]; docs/cluster.md)"
    )
    cluster.add_argument(
        "--replicas", type=int, default=None, help="run N engine replicas on Ray Serve behind this server"
    )
    cluster.add_argument(
        "--router",
        default="program",
        help="with --replicas: program (Tether's), pow2 (Ray's default), prefix (Ray's PrefixCacheAffinityRouter) "
        "or session (a consistent-hash ring)",
    )
    cluster.add_argument(
        "--ray-address",
        default=None,
        help="with --replicas: join this Ray cluster (auto or host:port); default: start a local one",
    )
    cluster.add_argument(
        "--replica-cpus", type=float, default=None, help="Ray CPUs per replica (default: --threads, else 1)"
    )


def run(args: argparse.Namespace) -> int:
    from tether.runtime.engine.config import EngineConfig

    try:
        _check_cluster_flags(args)
        server_config = _server_config(args)
        config = EngineConfig(model=args.model, **engine_kwargs(args))
    except ValueError as exc:
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


def _check_cluster_flags(args: argparse.Namespace) -> None:
    from tether.runtime.cluster.routers import ROUTERS

    if args.replicas is None:
        if args.ray_address is not None:
            raise ValueError("--ray-address needs --replicas N")
        return
    if args.replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {args.replicas}")
    if args.router not in ROUTERS:
        raise ValueError(f"unknown router {args.router!r}; known: {', '.join(ROUTERS)}")


def _server_config(args: argparse.Namespace):
    """The ``ServerConfig`` the flags give; ``ValueError`` naming a bad flag."""
    from tether.runtime.server.serving import DEFAULT_MAX_TOKENS, ServerConfig

    if args.program_idle_timeout <= 0:
        raise ValueError("--program-idle-timeout must be > 0")
    if args.max_tokens_default is not None and args.max_tokens_default < 0:
        raise ValueError("--max-tokens-default must be >= 0")
    if args.shutdown_timeout < 0:
        raise ValueError("--shutdown-timeout must be >= 0")
    cap = DEFAULT_MAX_TOKENS if args.max_tokens_default is None else (args.max_tokens_default or None)
    names = tuple(args.served_model_name or [args.model])
    return ServerConfig(
        names, api_key=args.api_key, program_idle_s=args.program_idle_timeout, max_tokens_default=cap
    )


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
