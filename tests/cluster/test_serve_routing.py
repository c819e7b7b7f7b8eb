"""The Ray Serve request routers (``tether.runtime.cluster.serve.routing``) deciding in process, without a Ray
cluster: Ray's ``RequestRouter`` base class is real; the replicas are stand-ins with the attributes a router
reads (id, routing stats, queue cap)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray.serve")

from ray.serve._private.common import DeploymentHandleSource, DeploymentID, ReplicaID  # noqa: E402
from ray.serve._private.request_router.common import PendingRequest  # noqa: E402

from tether.runtime.cluster.serve.calls import ReplicaCall  # noqa: E402
from tether.runtime.cluster.serve.request_routers import REQUEST_ROUTERS  # noqa: E402
from tether.runtime.cluster.serve.routing import live_router  # noqa: E402

DEP = DeploymentID(name="EngineReplica", app_name="routing-test")


class StandIn:
    """A replica as the router sees it."""

    def __init__(self, uid: str, stats: dict | None = None) -> None:
        self.replica_id = ReplicaID(uid, DEP)
        self.routing_stats = stats or {"queue_len": 0, "free_blocks": 100, "num_blocks": 100, "programs": []}
        self.max_ongoing_requests = 100
        self.node_id = "node"
        self.availability_zone = None
        self.multiplexed_model_ids: set[str] = set()

    async def get_queue_len(self, *, deadline_s: float) -> int:
        return int(self.routing_stats.get("queue_len", 0))


def _pending(call: ReplicaCall) -> PendingRequest:
    from ray.serve._private.common import RequestMetadata

    return PendingRequest(
        args=[call],
        kwargs={},
        metadata=RequestMetadata(request_id=call.call_id, internal_request_id=call.call_id),
    )


def _router(name: str, replicas: list[StandIn]):
    router = REQUEST_ROUTERS[name](deployment_id=DEP, handle_source=DeploymentHandleSource.UNKNOWN)
    router.initialize_state()
    router.update_replicas(replicas)
    return router


async def _route(router, call: ReplicaCall) -> str:
    pending = _pending(call)
    ranks = await router.choose_replicas(router._replicas_list, pending)
    chosen = ranks[0][0]
    router.on_request_routed(pending, chosen.replica_id, None)
    return chosen.replica_id.unique_id


async def test_a_programs_turns_stay_home_and_an_overloaded_home_moves_them() -> None:
    replicas = [StandIn(f"r{i}") for i in range(4)]
    router = _router("program", replicas)
    assert live_router(DEP.app_name, DEP.name) is router
    home = await _route(router, ReplicaCall("generate", "p"))
    for _ in range(5):
        assert await _route(router, ReplicaCall("generate", "p")) == home
    busy = next(r for r in replicas if r.replica_id.unique_id == home)
    busy.routing_stats = {**busy.routing_stats, "queue_len": 50}
    router._replica_queue_len_cache.invalidate_key(busy.replica_id)
    moved = ReplicaCall("generate", "p")
    new_home = await _route(router, moved)
    assert new_home != home
    assert router.moves == {moved.call_id: home} and router.moved_turns == 1
    assert await _route(router, ReplicaCall("generate", "p")) == new_home


async def test_a_targeted_call_goes_to_its_replica_only_and_teaches_nothing() -> None:
    router = _router("program", [StandIn("a"), StandIn("b")])
    for target in ("a", "b", "a"):
        assert await _route(router, ReplicaCall("end", "p", target=target)) == target
    pending = _pending(ReplicaCall("stats", target="gone"))
    assert await router.choose_replicas(router._replicas_list, pending) == [[]]
    assert router.rule._home == {}


async def test_a_dead_replica_is_recorded_once_and_its_programs_find_a_new_home() -> None:
    replicas = [StandIn("a"), StandIn("b")]
    router = _router("program", replicas)
    home = await _route(router, ReplicaCall("generate", "p"))
    router.on_replica_actor_died(ReplicaID(home, DEP))
    router.update_replicas([r for r in replicas if r.replica_id.unique_id != home])
    assert router.lost == [home]
    other = "b" if home == "a" else "a"
    assert await _route(router, ReplicaCall("generate", "p")) == other


async def test_programs_a_replica_reports_holding_are_homed_there() -> None:
    held = StandIn("b", {"queue_len": 0, "free_blocks": 10, "num_blocks": 100, "programs": ["p7"]})
    router = _router("program", [StandIn("a"), held])
    router.update_replicas([StandIn("a"), held])  # the stats come with a later update
    for _ in range(4):
        assert await _route(router, ReplicaCall("generate", "p7")) == "b"


async def test_the_session_ring_is_stable_and_the_baselines_route() -> None:
    router = _router("session", [StandIn(f"r{i}") for i in range(8)])
    first = [await _route(router, ReplicaCall("generate", f"p{k}")) for k in range(20)]
    again = [await _route(router, ReplicaCall("generate", f"p{k}")) for k in range(20)]
    assert first == again and len(set(first)) > 1
    pow2 = _router("pow2", [StandIn("a"), StandIn("b")])
    assert {await _route(pow2, ReplicaCall("generate", "p")) for _ in range(40)} == {"a", "b"}
