"""``tether serve``: the OpenAI-compatible server (``tether.runtime.server``) on uvicorn, bound to loopback unless
``--host`` says otherwise."""

from __future__ import annotations

import argparse
import os
import sys

from tether.cli.common import add_engine_args, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the OpenAI API (chat, completions, models, metrics)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
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
    p.add_argument("--log-level", default="warning", help="uvicorn's log level")
    p.add_argument(
        "--trace-dir",
        default=None,
        help="where the run's trace is recorded (default: $TETHER_HOME/runs, else ./.tether/runs)",
    )
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
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from tether.runtime.deployment import Deployment
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.errors import EngineError
    from tether.runtime.server.app import create_app
    from tether.runtime.server.outcome import TurnOutcomes
    from tether.runtime.server.serving import DEFAULT_MAX_TOKENS, ServerConfig

    if args.program_idle_timeout <= 0:
        print("tether serve: --program-idle-timeout must be > 0", file=sys.stderr)
        return 2
    try:
        config = EngineConfig(model=args.model, **engine_kwargs(args))
    except ValueError as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 2
    names = tuple(args.served_model_name or [args.model])
    if args.max_tokens_default is not None and args.max_tokens_default < 0:
        print("tether serve: --max-tokens-default must be >= 0", file=sys.stderr)
        return 2
    cap = DEFAULT_MAX_TOKENS if args.max_tokens_default is None else (args.max_tokens_default or None)
    server_config = ServerConfig(
        names,
        api_key=args.api_key,
        program_idle_s=args.program_idle_timeout,
        max_tokens_default=cap,
    )
    if args.replicas is not None:
        from tether.cli.serve_cluster import run_cluster

        return run_cluster(args, config, server_config)
    if args.ray_address is not None:
        print("tether serve: --ray-address needs --replicas N", file=sys.stderr)
        return 2

    async def main() -> None:
        deployment = Deployment()
        outcomes = TurnOutcomes(deployment.stats)  # clients run the tools: their pauses time them
        backend = await deployment.start_local_engine(config, turn_outcome=outcomes.outcome)
        try:
            meta = {"model": args.model, "policy": config.policy}
            recorder = await deployment.record("serve", "serve", trace_dir=args.trace_dir, meta=meta)
            app = create_app(backend.engine, server_config, outcomes, on_shutdown=deployment.close)
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host=args.host, port=args.port, log_level=args.log_level, access_log=False
                )
            )
            print(
                f"tether serve: {', '.join(names)} (policy {config.policy}) on http://{args.host}:{args.port}/v1; "
                f"trace: {recorder.dir}",
                file=sys.stderr,
                flush=True,
            )
            await server.serve()
        finally:
            await deployment.close()  # a no-op when the app's shutdown closed it

    try:
        asyncio.run(main())
    except (EngineError, ValueError) as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 1
    return 0
