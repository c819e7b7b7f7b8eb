"""The decision time of the routers as Ray Serve runs them (``tether/runtime/cluster/serve/routing.py``).

    .venv/bin/python bench/ray_router_decision.py [--replicas 64] [--programs 10000] [--turns 20000]

``tether bench router`` times the routing rule alone. This times what a Ray Serve handle adds around it: the
request router's ``choose_replicas`` (building the rule's view of every replica from Ray's queue-length cache
and the routing stats) and ``on_request_routed``, for each router, in process. Ray's ``RequestRouter`` base class
is real; the replicas are stand-ins with the attributes a router reads, each reporting routing stats with its
share of the live programs. A fifth of the turns start a new program. Ray's own probing of queue lengths and the
call to the replica are not timed (they cost the same under every router). ``prefix`` is left out: its
``on_request_routed`` makes a blocking call to Ray's prefix-tree actor, which needs a running Ray cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

from ray.serve._private.common import (
    DeploymentHandleSource,
    DeploymentID,
    ReplicaID,
    RequestMetadata,
)
from ray.serve._private.request_router.common import PendingRequest

from tether.runtime.cluster.serve.calls import ReplicaCall
from tether.runtime.cluster.serve.request_routers import REQUEST_ROUTERS

DEP = DeploymentID(name="EngineReplica", app_name="decision-bench")


class StandIn:
    def __init__(self, uid: str, programs: list[str]) -> None:
        self.replica_id = ReplicaID(uid, DEP)
        self.routing_stats = {"queue_len": 0, "free_blocks": 1000, "num_blocks": 4000, "programs": programs}
        self.max_ongoing_requests = 1024
        self.node_id = "node"
        self.availability_zone = None
        self.multiplexed_model_ids: set[str] = set()

    async def get_queue_len(self, *, deadline_s: float) -> int:
        return 0


async def run(name: str, args: argparse.Namespace) -> list[float]:
    rng = random.Random(0)
    programs = [f"p{k}" for k in range(args.programs)]
    replicas = [StandIn(f"r{i}", programs[i :: args.replicas]) for i in range(args.replicas)]
    router = REQUEST_ROUTERS[name](deployment_id=DEP, handle_source=DeploymentHandleSource.UNKNOWN)
    router.initialize_state()
    router.update_replicas(replicas)
    cache = router._replica_queue_len_cache
    for r in replicas:
        cache.update(r.replica_id, rng.randrange(8))
    times, fresh = [], args.programs
    for _ in range(args.turns):
        if rng.random() < 0.2:
            pid, fresh = f"p{fresh}", fresh + 1
        else:
            pid = programs[rng.randrange(args.programs)]
        call = ReplicaCall("generate", pid)
        meta = RequestMetadata(request_id=call.call_id, internal_request_id=call.call_id)
        pending = PendingRequest(args=[call], kwargs={}, metadata=meta)
        t0 = time.perf_counter()
        ranks = await router.choose_replicas(router._replicas_list, pending)
        router.on_request_routed(pending, ranks[0][0].replica_id, None)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=64)
    p.add_argument("--programs", type=int, default=10_000)
    p.add_argument("--turns", type=int, default=20_000)
    p.add_argument("--routers", default="program,pow2,session")
    args = p.parse_args()
    print(
        f"{args.replicas} replicas, {args.programs} live programs, {args.turns} turns; load {os.getloadavg()[0]:.2f}"
    )
    for name in args.routers.split(","):
        t = sorted(asyncio.run(run(name, args)))
        med, p99 = statistics.median(t), t[int(0.99 * len(t))]
        print(f"{name:>8s}: median {med * 1e6:7.1f} us, p99 {p99 * 1e6:7.1f} us per turn")


if __name__ == "__main__":
    main()
