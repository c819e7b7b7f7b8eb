"""How the cluster's routers route on Ray Serve (``ray.serve.request_router.RequestRouter``); the classes Ray
deploys are the leaves in ``request_routers.py``.

- ``program``: Tether's ``ProgramRouter`` (``tether/runtime/cluster/routers.py``, the code the simulator runs)
  over what the replicas report through Ray Serve's routing stats (``EngineReplica.record_routing_stats``: free
  KV blocks, pins, parked programs) and Ray's queue-length cache (requests in flight per replica).
- ``pow2``: Ray Serve's own ``PowerOfTwoChoicesRequestRouter``, the default.
- ``prefix``: Ray Serve LLM's own ``PrefixCacheAffinityRouter`` (``ray.llm._internal.serve.routing_policies.
  prefix_aware.prefix_aware_router``; ``ray.serve.llm.request_router`` re-exports it but imports pyarrow). It
  reads ``ReplicaCall.prompt``.
- ``session``: ``SessionHashRouter`` (production-stack's consistent-hash ring) over the live replicas.

Each is wrapped in ``TetherRouting``, which adds what the ingress needs and changes no baseline's rule: a call
with a ``target`` (ending a program on a replica, reading a replica's counters) goes to that replica only;
replica deaths (``on_replica_actor_died``) and replicas that leave the controller's list are recorded; the router
registers itself (``live_router``) so the ingress in the same process can list the replicas and read the moves.
"""

from __future__ import annotations

import threading
from typing import Any

from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_aware_router import (
    PrefixCacheAffinityRouter,
)
from ray.serve._private.request_router.pow_2_router import PowerOfTwoChoicesRequestRouter
from ray.serve.request_router import PendingRequest, ReplicaID, RequestRouter, RunningReplica

from tether.runtime.cluster.replicas import ReplicaStats, RouteDecision, RouteRequest
from tether.runtime.cluster.routers import ProgramRouter, Router, SessionHashRouter
from tether.runtime.cluster.serve.calls import ReplicaCall

_LIVE: dict[tuple[str, str], TetherRouting] = {}  # (app, deployment) -> its router in this process
_LIVE_LOCK = threading.Lock()
_NO_STATS: dict[str, Any] = {}
MEMO_PER_REPLICA = 256  # memoized replica views per replica, past which the memo starts over


def live_router(app: str, deployment: str) -> TetherRouting | None:
    """The router Ray Serve made in this process for the deployment's handles (``None`` before the handle's
    first request)."""
    with _LIVE_LOCK:
        return _LIVE.get((app, deployment))


def call_of(pending: PendingRequest | None) -> ReplicaCall | None:
    if pending is None:
        return None
    return next((a for a in pending.args if isinstance(a, ReplicaCall)), None)


def _fresh_queue_lens(cache: Any) -> dict[ReplicaID, int]:
    """Ray's ``ReplicaQueueLengthCache`` in one pass: the entries ``cache.get`` would return (not stale), read
    from its table with one clock read instead of one per replica."""
    now = cache._get_curr_time_s()
    limit = cache._staleness_timeout_s
    return {rid: e.queue_len for rid, e in cache._cache.items() if now - e.timestamp <= limit}


class TetherRouting:
    """The mixin every cluster router is built with (first in the bases: its hooks run before the router's)."""

    def initialize_state(self, **kwargs: Any) -> None:
        self.lost: list[str] = []  # replicas that died or left, in order (each once)
        self.moves: dict[str, str] = {}  # call id -> the replica its turn left (the ingress pops it)
        self.moved_turns = 0
        super().initialize_state(**kwargs)  # type: ignore[misc]
        dep = self._deployment_id  # type: ignore[attr-defined]
        with _LIVE_LOCK:
            _LIVE[(dep.app_name, dep.name)] = self

    def live_replicas(self) -> dict[str, RunningReplica]:
        """The replicas routed to now, by their unique id."""
        return {r.replica_id.unique_id: r for r in list(self._replicas_list)}  # type: ignore[attr-defined]

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        call = call_of(pending_request)
        if call is not None and call.target is not None:
            if pending_request is not None:
                pending_request.routing_context.should_backoff = True
            return [[r for r in candidate_replicas if r.replica_id.unique_id == call.target]]
        return await super().choose_replicas(candidate_replicas, pending_request)  # type: ignore[misc]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        call = call_of(pending_request)
        if call is None or call.op != "generate":
            return  # a control call teaches the router nothing
        super().on_request_routed(pending_request, replica_id, result)  # type: ignore[misc]

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)  # type: ignore[misc]
        self._lose(replica_id.unique_id)

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        before = set(self.live_replicas())
        super().update_replicas(replicas)  # type: ignore[misc]
        for uid in sorted(before - {r.replica_id.unique_id for r in replicas}):
            self._lose(uid)
        self.replicas_updated(replicas)

    def replicas_updated(self, replicas: list[RunningReplica]) -> None:
        """A hook: the list (and the routing stats) changed."""

    def _lose(self, uid: str) -> None:
        if uid not in self.lost:
            self.lost.append(uid)
            self.replica_lost(uid)

    def replica_lost(self, uid: str) -> None:
        """A hook: ``uid`` died or left."""


class Pow2Routing(TetherRouting, PowerOfTwoChoicesRequestRouter):
    """Ray Serve's default router, unchanged."""


class PrefixRouting(TetherRouting, PrefixCacheAffinityRouter):
    """Ray Serve LLM's prefix-cache affinity router, unchanged, except for a request with no text: Ray's rule
    divides by the text's length there (``_prefix_match_best_replicas``), so such a request takes the rule's own
    fallback, power of two choices."""

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        call = call_of(pending_request)
        if call is not None and call.target is None and not call.prompt:
            return await PowerOfTwoChoicesRequestRouter.choose_replicas(
                self, candidate_replicas, pending_request
            )
        return await super().choose_replicas(candidate_replicas, pending_request)


class RuleRouting(TetherRouting, RequestRouter):
    """A ``tether.runtime.cluster.routers.Router`` deciding for Ray Serve."""

    def make_rule(self) -> Router:
        raise NotImplementedError

    def initialize_state(self, **kwargs: Any) -> None:
        super().initialize_state(**kwargs)
        self.rule = self.make_rule()
        self._decided: dict[str, RouteDecision] = {}
        self._views: dict[tuple[str, int, int, int], ReplicaStats] = {}

    def stats(self, replicas: list[RunningReplica]) -> dict[str, ReplicaStats]:
        """What the rule reads: Ray's queue-length cache (else the replica's own count), and its routing stats.
        The views are memoized by their values: one decision at 64 replicas builds one or two new ones."""
        lens = _fresh_queue_lens(self._replica_queue_len_cache)
        memo = self._views
        if len(memo) > MEMO_PER_REPLICA * len(replicas):
            memo.clear()
        out = {}
        for r in replicas:
            rid = r.replica_id
            s = r.routing_stats or _NO_STATS
            q = lens.get(rid)
            key = (
                rid.unique_id,
                s.get("queue_len", 0) if q is None else q,
                s.get("free_blocks", 0),
                s.get("num_blocks", 1),
            )
            view = memo.get(key)
            if view is None:
                view = memo[key] = ReplicaStats(*key)
            out[key[0]] = view
        return out

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        call = call_of(pending_request)
        if call is not None and call.target is not None:
            return await super().choose_replicas(candidate_replicas, pending_request)
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True
        if not candidate_replicas:
            return []
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        request = RouteRequest(call.program_id if call is not None else None)
        decision = self.rule.route(request, self.stats(candidate_replicas))
        if call is not None:
            self._decided[call.call_id] = decision
        return [[by_id[decision.replica_id]]]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        call = call_of(pending_request)
        if call is None or call.op != "generate":
            return
        uid = replica_id.unique_id
        self.rule.routed(RouteRequest(call.program_id), uid)
        decision = self._decided.pop(call.call_id, None)
        if decision is not None and decision.moved_from is not None and decision.moved_from != uid:
            self.moves[call.call_id] = decision.moved_from
            self.moved_turns += 1

    def replica_lost(self, uid: str) -> None:
        self.rule.replica_died(uid)

    def program_ended(self, program_id: str) -> None:
        self.rule.ended(program_id)


class ProgramRouting(RuleRouting):
    def make_rule(self) -> Router:
        return ProgramRouter()

    def replicas_updated(self, replicas: list[RunningReplica]) -> None:
        """The programs each replica reports holding (pins, parked KV) are homed there if the router has no home
        for them yet (a restarted ingress)."""
        held = {
            r.replica_id.unique_id: ReplicaStats(
                r.replica_id.unique_id, programs=frozenset((r.routing_stats or {}).get("programs", ()))
            )
            for r in replicas
        }
        rule = getattr(self, "rule", None)
        if isinstance(rule, ProgramRouter):
            rule.held(held)


class SessionRouting(RuleRouting):
    def make_rule(self) -> Router:
        return SessionHashRouter()
