"""What a replica reports to the router, and what the router knows of a request."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReplicaStats:
    """One replica's state as the router sees it (Ray Serve's routing stats, or the simulator's engines).

    ``queue_len``: requests waiting or running; ``free_blocks`` / ``num_blocks``: its GPU KV blocks;
    ``programs``: the programs it holds KV for (a pin on the GPU or parked in CPU memory)."""

    replica_id: str
    queue_len: int = 0
    free_blocks: int = 0
    num_blocks: int = 1
    programs: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class RouteRequest:
    """``program_id``: the program the turn belongs to (``None``: a request of no program); ``prompt``: its
    token ids, for routers that match prefixes."""

    program_id: str | None
    prompt: tuple[int, ...] = ()


@dataclass(frozen=True)
class RouteDecision:
    """Where the turn goes; ``moved_from``: the replica holding the program's KV that the turn left (it should
    release the program's pin), else ``None``."""

    replica_id: str
    moved_from: str | None = None
