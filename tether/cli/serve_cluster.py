"""``tether serve --replicas N``: engine replicas on Ray Serve behind the same OpenAI-compatible routes, placed by
``--router`` (docs/cluster.md)."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from tether.runtime.engine.config import EngineConfig
from tether.runtime.server.serving import ServerConfig


def run_cluster(
    args: argparse.Namespace, config: EngineConfig, server: ServerConfig, sock: socket.socket
) -> int:
    """Start the replicas, then serve on ``sock`` (already bound)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print("tether serve: --replicas needs Ray Serve: pip install 'tether[cluster]'", file=sys.stderr)
        return 2
    from tether.runtime.cluster.serve.launch import ClusterSpec, start_cluster, stop_cluster
    from tether.runtime.cluster.serve.replica import ReplicaSpec

    cpus = args.replica_cpus or float(config.num_threads or 1)
    gpus = 1.0 if config.device.startswith("cuda") else 0.0
    spec = ClusterSpec(args.replicas, args.router, args.ray_address, cpus=cpus, gpus=gpus)
    try:
        handle = start_cluster(spec, ReplicaSpec(config, server))
    except ValueError as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a replica could not start (its engine's error is in Ray's replica log)
        stop_cluster(spec)
        print(
            f"tether serve: {exc} (the replicas' logs: /tmp/ray/session_latest/logs/serve)", file=sys.stderr
        )
        return 1

    try:
        asyncio.run(_serve(args, handle, config, server, sock))
    except TimeoutError as exc:
        print(f"tether serve: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_cluster(spec)
    return 0


async def _serve(
    args: argparse.Namespace, handle, config: EngineConfig, server: ServerConfig, sock: socket.socket
) -> None:
    """The ingress in this process, recording the run, once the router reaches every replica."""
    from tether.cli.serve import uvicorn_server
    from tether.runtime.cluster.serve.ingress import ClusterIngress, create_cluster_app
    from tether.runtime.cluster.serve.launch import APP, DEPLOYMENT
    from tether.runtime.deployment import Deployment

    deployment = Deployment()
    meta = {
        "model": args.model,
        "policy": config.policy,
        "replicas": args.replicas,
        "router": args.router,
    }
    recorder = await deployment.record("serve", "serve", trace_dir=args.trace_dir, meta=meta)
    assert deployment.trace is not None
    ingress = ClusterIngress(handle, APP, DEPLOYMENT, server, emit=deployment.trace.emit)
    try:
        await ingress.ready(args.replicas)
    except TimeoutError:
        await deployment.close("failed")
        raise
    app = create_cluster_app(ingress, on_shutdown=deployment.close)
    uv = uvicorn_server(args, app)
    print(
        f"tether serve: {', '.join(server.served_model_names)} (policy {config.policy}) on {args.replicas} "
        f"replicas, router {args.router}, on http://{args.host}:{args.port}/v1; trace: {recorder.dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await uv.serve(sockets=[sock])
    finally:
        await deployment.close()
