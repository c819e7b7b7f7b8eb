"""Routers: which replica a turn goes to. Each is a small object with one rule, chosen by name (``get_router``):

- ``program`` (Tether's): a turn of a program whose KV a replica holds (a pin, parked KV, or the replica its
  last turn ran on, whose prefix cache holds its context) goes there, unless that replica is overloaded: its
  queue is longer than ``overload_factor`` times the mean and by more than ``overload_slack``. Then the turn
  moves, and the old replica is told to release the program's pin (``RouteDecision.moved_from``). A new
  program, or a moved turn, takes the better of two replicas drawn at random (power of two choices: the shorter
  queue, then the more free KV blocks), so a decision costs O(1) at any replica count.
- ``pow2``: Ray Serve's default ``PowerOfTwoChoicesRequestRouter``: two replicas at random, the shorter queue.
- ``prefix``: Ray Serve LLM's ``PrefixCacheAffinityRouter`` (``ray/llm/_internal/serve/request_router/
  prefix_aware/prefix_aware_router.py``, ``_prefix_match_best_replicas``): when the longest queue is within
  ``imbalanced_threshold`` (10) of the shortest, the replicas that served the longest prefix of the prompt if it
  covers at least ``match_rate_threshold`` (0.1) of it, else the replicas with the fewest prefix entries; the
  shortest queue among them; when the load is imbalanced, or nothing is chosen, power of two choices. Prefixes
  are matched in whole 16-token blocks here (Ray matches characters).
- ``session``: production-stack's session router: a consistent-hash ring over the replicas (virtual nodes), keyed
  by the program id; requests of no program go to the shortest queue.

Routers read only what a deployment knows when the turn arrives: the replicas' reported stats, the program id
and the prompt, and where earlier turns went.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Mapping

from tether.runtime.cluster.prefix_tree import PrefixIndex
from tether.runtime.cluster.replicas import ReplicaStats, RouteDecision, RouteRequest

ROUTERS = ("program", "pow2", "prefix", "session")


class NoReplicaError(RuntimeError):
    """No live replica to route to."""


class Router:
    """The base: ``route`` picks a replica among ``replicas`` (the live ones, by id); ``routed`` is told where a
    turn went; ``replica_died`` drops a replica (Ray Serve's ``on_replica_actor_died``)."""

    name = "router"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def route(self, request: RouteRequest, replicas: Mapping[str, ReplicaStats]) -> RouteDecision:
        raise NotImplementedError

    def routed(self, request: RouteRequest, replica_id: str) -> None:
        """The turn was sent to ``replica_id``."""

    def replica_died(self, replica_id: str) -> None:
        """``replica_id`` is gone: forget what it held."""

    def ended(self, program_id: str) -> None:
        """The program ended: forget it."""

    def pow2(self, replicas: Mapping[str, ReplicaStats], exclude: str | None = None) -> str:
        """Power of two choices: two replicas at random, the shorter queue (then the more free KV blocks)."""
        ids = [r for r in replicas if r != exclude] or list(replicas)
        if not ids:
            raise NoReplicaError("no live replica")
        a, b = (ids[0], ids[0]) if len(ids) == 1 else self.rng.sample(ids, 2)
        return min((a, b), key=lambda r: (replicas[r].queue_len, -replicas[r].free_blocks, r))


class Pow2Router(Router):
    name = "pow2"

    def route(self, request: RouteRequest, replicas: Mapping[str, ReplicaStats]) -> RouteDecision:
        return RouteDecision(self.pow2(replicas))


class ProgramRouter(Router):
    name = "program"

    def __init__(self, seed: int = 0, overload_factor: float = 2.0, overload_slack: int = 4) -> None:
        super().__init__(seed)
        self.overload_factor = overload_factor
        self.overload_slack = overload_slack
        self._home: dict[str, str] = {}  # program -> the replica its last turn went to
        self.moves = 0  # turns sent away from their program's replica

    def route(self, request: RouteRequest, replicas: Mapping[str, ReplicaStats]) -> RouteDecision:
        pid = request.program_id
        home = self._home.get(pid) if pid is not None else None
        if home is None or home not in replicas:
            return RouteDecision(self.pow2(replicas))
        if not self._overloaded(replicas[home], replicas):
            return RouteDecision(home)
        self.moves += 1
        return RouteDecision(self.pow2(replicas, exclude=home), moved_from=home)

    def _overloaded(self, stats: ReplicaStats, replicas: Mapping[str, ReplicaStats]) -> bool:
        mean = sum(r.queue_len for r in replicas.values()) / len(replicas)
        return stats.queue_len > max(self.overload_factor * mean, mean + self.overload_slack)

    def routed(self, request: RouteRequest, replica_id: str) -> None:
        if request.program_id is not None:
            self._home[request.program_id] = replica_id

    def held(self, replicas: Mapping[str, ReplicaStats]) -> None:
        """Take the programs each replica reports holding as their home (after a router restart)."""
        for rid, stats in replicas.items():
            for pid in stats.programs:
                self._home.setdefault(pid, rid)

    def ended(self, program_id: str) -> None:
        """The program ended: its next request, if any, is a new program's."""
        self._home.pop(program_id, None)

    def replica_died(self, replica_id: str) -> None:
        self._home = {p: r for p, r in self._home.items() if r != replica_id}


class PrefixAffinityRouter(Router):
    name = "prefix"

    def __init__(self, seed: int = 0, imbalanced_threshold: int = 10, match_rate_threshold: float = 0.1) -> None:
        super().__init__(seed)
        self.imbalanced_threshold = imbalanced_threshold
        self.match_rate_threshold = match_rate_threshold
        self.index = PrefixIndex()

    def route(self, request: RouteRequest, replicas: Mapping[str, ReplicaStats]) -> RouteDecision:
        queues = [r.queue_len for r in replicas.values()]
        if request.prompt and queues and max(queues) - min(queues) <= self.imbalanced_threshold:
            matched, best = self.index.match(request.prompt, replicas)
            if matched / len(request.prompt) < self.match_rate_threshold:
                best = self.index.smallest(replicas)
            if best:
                return RouteDecision(min(best, key=lambda r: (replicas[r].queue_len, r)))
        return RouteDecision(self.pow2(replicas))

    def routed(self, request: RouteRequest, replica_id: str) -> None:
        if request.prompt:
            self.index.insert(request.prompt, replica_id)

    def replica_died(self, replica_id: str) -> None:
        self.index.remove(replica_id)


class SessionHashRouter(Router):
    name = "session"
    VNODES = 64  # points per replica on the ring

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._ring: list[tuple[int, str]] = []
        self._members: frozenset[str] = frozenset()

    def route(self, request: RouteRequest, replicas: Mapping[str, ReplicaStats]) -> RouteDecision:
        if not replicas:
            raise NoReplicaError("no live replica")
        if request.program_id is None:
            return RouteDecision(min(replicas, key=lambda r: (replicas[r].queue_len, r)))
        if self._members != frozenset(replicas):
            self._build(replicas)
        i = bisect.bisect(self._ring, (_point(request.program_id), "")) % len(self._ring)
        return RouteDecision(self._ring[i][1])

    def _build(self, replicas: Mapping[str, ReplicaStats]) -> None:
        self._members = frozenset(replicas)
        self._ring = sorted((_point(f"{r}#{v}"), r) for r in replicas for v in range(self.VNODES))


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def parse_routers(spec: str) -> tuple[str, ...]:
    """``"program,pow2"`` -> the names, each checked (``ValueError`` names an unknown one)."""
    names = tuple(r.strip() for r in spec.split(",") if r.strip())
    for name in names:
        get_router(name)
    return names


def get_router(name: str, seed: int = 0) -> Router:
    """A router by name (``ROUTERS``); ``ValueError`` naming the known ones."""
    routers = {
        "program": ProgramRouter,
        "pow2": Pow2Router,
        "prefix": PrefixAffinityRouter,
        "session": SessionHashRouter,
    }
    if name not in routers:
        raise ValueError(f"unknown router {name!r}; known: {', '.join(ROUTERS)}")
    return routers[name](seed)
