"""Starting Tether's engine replicas on Ray Serve: a local Ray cluster, or an existing one joined by address.

One Serve application (``APP``) with one deployment (``DEPLOYMENT``) of ``EngineReplica``; its handle's request
router is the chosen one (``request_routers.REQUEST_ROUTERS``); the replicas report routing stats every
``ROUTING_STATS_PERIOD_S``. Ray's HTTP proxy is not started: the ingress (``ingress.py``) serves HTTP in the
calling process through the handle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tether.runtime.cluster.serve.replica import EngineReplica, ReplicaSpec

APP = "tether"
DEPLOYMENT = "EngineReplica"
ROUTING_STATS_PERIOD_S = 0.5
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local cluster's object store: calls and answers are small


@dataclass(frozen=True)
class ClusterSpec:
    """``replicas``: engine replicas; ``router``: a name in ``REQUEST_ROUTERS``; ``ray_address``: ``None``
    starts a local Ray cluster, ``"auto"`` or ``host:port`` joins one (its nodes need Tether installed);
    ``cpus`` / ``gpus``: Ray resources per replica; ``max_ongoing_requests``: Ray's cap per replica (the engine
    queues the rest of its own accord)."""

    replicas: int
    router: str = "program"
    ray_address: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    max_ongoing_requests: int = 1024


class _ServeReplica(EngineReplica):
    async def __init__(self, spec: ReplicaSpec) -> None:  # type: ignore[misc]  # Ray Serve awaits it
        await self.start(spec)

    async def __del__(self) -> None:  # Ray Serve's shutdown hook (awaited by the replica)
        await self.close()


def start_cluster(spec: ClusterSpec, replica: ReplicaSpec) -> Any:
    """Start (or join) Ray, deploy the replicas and wait until they serve; returns the deployment's handle.
    ``ValueError`` for an unknown router or a replica count below 1."""
    import ray
    from ray import serve
    from ray.serve.config import RequestRouterConfig

    from tether.runtime.cluster.serve.request_routers import REQUEST_ROUTERS

    if spec.router not in REQUEST_ROUTERS:
        raise ValueError(f"unknown router {spec.router!r}; known: {', '.join(REQUEST_ROUTERS)}")
    if spec.replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {spec.replicas}")
    if spec.ray_address is None:
        needed = int(spec.replicas * spec.cpus + 0.999)
        ray.init(
            num_cpus=max(os.cpu_count() or 1, needed),  # logical CPUs: replicas may share cores here
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
        )
    else:
        ray.init(address=spec.ray_address, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    deployment = serve.deployment(
        _ServeReplica,
        name=DEPLOYMENT,
        num_replicas=spec.replicas,
        max_ongoing_requests=spec.max_ongoing_requests,
        ray_actor_options={"num_cpus": spec.cpus, "num_gpus": spec.gpus},
        request_router_config=RequestRouterConfig(
            request_router_class=REQUEST_ROUTERS[spec.router],
            request_routing_stats_period_s=ROUTING_STATS_PERIOD_S,
        ),
    )
    return serve.run(deployment.bind(replica), name=APP, route_prefix=None)


def stop_cluster(spec: ClusterSpec) -> None:
    """Delete the application and disconnect; on the local cluster ``start_cluster`` started, Serve and Ray
    stop too (a joined cluster's Serve keeps its other applications)."""
    import ray
    from ray import serve

    try:
        if spec.ray_address is None:
            serve.shutdown()
        else:
            serve.delete(APP)
    finally:
        ray.shutdown()
